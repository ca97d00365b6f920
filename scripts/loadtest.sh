#!/usr/bin/env bash
# Load test of the service on loopback with wrk (Debian: apt-get install -y wrk).
#
# Starts the release binary on the seed's Netflix subset (K = 12), then three bounded runs:
#   1. GET /healthz             the framework's ceiling on this machine
#   2. POST /v1/recommend       a 20-rating profile, n = 10
#   3. POST /v1/recommend       again, while retrains run back to back (errors counted);
#                               trainings get TRAIN_THREADS (default 1) of the 2 cores
#   then SLICES (default 5) pairs of SLICE-second (default 2) runs of 1 and 2 back to back,
#   each pair's ratio and their median (what to quote: the host drifts between long runs)
# Each run: DURATION seconds at CONNECTIONS connections, wrk with 2 threads, --latency.
#
#   cargo build --release && scripts/loadtest.sh
#   DURATION=20 CONNECTIONS=32 scripts/loadtest.sh
#   DATA=big.bin CONNECTIONS=32 READY_TRIES=3000 MIXREC__TRAINING__N_INIT=1 scripts/loadtest.sh
#   MIXREC_BIN=/tmp/old/mixrec scripts/loadtest.sh    # another build (to pair two builds)
set -euo pipefail

cd "$(dirname "$0")/.."
. scripts/lib.sh
DATA=${DATA:-../shared/data/netflix_incomplete.txt}
PORT=${PORT:-18080}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
TOKEN=loadtest-token
BASE="http://127.0.0.1:$PORT"
BIN=${MIXREC_BIN:-target/release/mixrec}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
[[ -x $BIN ]] || { echo "build first: cargo build --release" >&2; exit 1; }
[[ -f $DATA ]] || { echo "no snapshot at $DATA (set DATA=...)" >&2; exit 1; }

work=$(mktemp -d)
server_pid=""
cleanup() {
    # SIGINT: no shutdown delay (server.shutdown_delay_ms applies to SIGTERM only).
    [[ -n $server_pid ]] && kill -INT "$server_pid" 2>/dev/null && wait "$server_pid" || true
    rm -rf "$work"
}
trap cleanup EXIT

MIXREC_ADMIN_TOKEN=$TOKEN MIXREC__TRAINING__K=12 MIXREC__TRAINING__THREADS=${TRAIN_THREADS:-1} RUST_LOG=warn \
    MIXREC__MODELS__DIR="$work/models" "$BIN" serve --data "$DATA" --listen "127.0.0.1:$PORT" 2>"$work/server.log" &
server_pid=$!
wait_ready "$BASE" "$work/server.log" "${READY_TRIES:-600}"
recommend_lua "$BASE" "$work/recommend.lua"

run() { # name, url, [lua script]
    local name=$1 url=$2 script=${3:-}
    local args=(-t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency)
    [[ -n $script ]] && args+=(-s "$script")
    wrk "${args[@]}" "$url" >"$work/$name.txt"
    wrk_figures "$work/$name.txt"
    printf '%-22s %12s req/s   p50 %-9s p99 %-9s non-2xx %-6s socket errors %s\n' \
        "$name" "$RPS" "$P50" "$P99" "$NON2XX" "$ERRORS"
}

echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency; $(nproc) cores shared by server and wrk"
run healthz "$BASE/healthz"
run recommend "$BASE/v1/recommend" "$work/recommend.lua"

# The ratio again from SLICES pairs of short runs, healthz then recommend, back to back: a
# shared host's speed drifts by more than the routes differ over the two long runs above, and
# a pair's two runs see the same moment of it. The median pair is the figure to quote.
SLICES=${SLICES:-5}
SLICE=${SLICE:-2}
ratios=()
for ((i = 1; i <= SLICES; i++)); do
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SLICE}s" "$BASE/healthz" >"$work/slice-h.txt"
    wrk_figures "$work/slice-h.txt"
    h=$RPS
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SLICE}s" -s "$work/recommend.lua" "$BASE/v1/recommend" >"$work/slice-r.txt"
    wrk_figures "$work/slice-r.txt"
    ratios+=("$(awk -v r="$RPS" -v h="$h" 'BEGIN { printf "%.3f", r / h }')")
    printf 'pair %d of %ds: healthz %12s req/s, recommend %12s req/s, ratio %s\n' "$i" "$SLICE" "$h" "$RPS" "${ratios[-1]}"
done
printf 'recommend / healthz over %d pairs: median %s (%s)\n' "$SLICES" \
    "$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')" \
    "$(printf '%s\n' "${ratios[@]}" | sort -n | paste -sd' ')"

# Retrains back to back for the whole third run.
retrains=0
retrain_loop() {
    local end=$((SECONDS + DURATION))
    while ((SECONDS < end)); do
        local job
        job=$(curl -fs -X POST -H "Authorization: Bearer $TOKEN" "$BASE/admin/retrain" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
        [[ -z $job ]] && { sleep 0.1; continue; }
        echo "$job" >>"$work/jobs"
        until curl -fs -H "Authorization: Bearer $TOKEN" "$BASE/admin/jobs/$job" | grep -qE '"state":"(succeeded|failed)"'; do
            sleep 0.1
        done
    done
}
retrain_loop &
loop_pid=$!
run recommend+retrain "$BASE/v1/recommend" "$work/recommend.lua"
wait "$loop_pid"
retrains=$(wc -l <"$work/jobs")
version=$(curl -fs "$BASE/v1/model" | sed -n 's/.*"version":\([0-9]*\).*/\1/p')
echo "retrains started during run 3: $retrains; model version now $version"
