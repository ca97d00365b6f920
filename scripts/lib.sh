# Shared by the load scripts (loadtest.sh, soak.sh, overload.sh): source it, do not run it.

# wait_ready BASE LOG [TRIES]: polls BASE/readyz every 0.1 s; prints LOG and exits if the
# server is not ready after TRIES (600) polls.
wait_ready() {
    local base=$1 log=$2 tries=${3:-600}
    for _ in $(seq "$tries"); do
        curl -fs "$base/readyz" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "server not ready"; cat "$log"; exit 1
}

# recommend_lua BASE OUT: writes a wrk script to OUT that posts a 20-rating profile (items
# spread through the first 1000 of the catalogue, so any snapshot works) with n = 10, and
# checks the server answers it.
recommend_lua() {
    local base=$1 out=$2 profile
    profile=$(curl -fs "$base/v1/items?offset=0&limit=1000" | python3 -c '
import json, sys
ids = [item["id"] for item in json.load(sys.stdin)["items"]]
step = max(1, len(ids) // 20)
print(json.dumps({"ratings": {ids[i * step % len(ids)]: 1 + (i * 7) % 5 for i in range(20)}, "n": 10}))')
    cat >"$out" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$profile'
LUA
    curl -fs -H 'content-type: application/json' -d "$profile" "$base/v1/recommend" >/dev/null
}

# wrk_figures FILE: reads wrk --latency output into RPS TOTAL P50 P99 NON2XX ERRORS.
wrk_figures() {
    local f=$1
    RPS=$(awk '/^Requests\/sec/ {print $2}' "$f")
    TOTAL=$(awk '/requests in/ {print $1}' "$f")
    P50=$(awk '$1 == "50%" {print $2}' "$f")
    P99=$(awk '$1 == "99%" {print $2}' "$f")
    NON2XX=$(awk '/Non-2xx/ {print $NF}' "$f")
    NON2XX=${NON2XX:-0}
    ERRORS=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$f")
    ERRORS=${ERRORS:-0}
}
