#!/usr/bin/env bash
# Soak test on loopback: /v1/recommend under load while the model is retrained, then memory
# after ten retrains. Needs wrk (apt-get install -y wrk) and `cargo build --release`.
#
#   1. DURATION (60) seconds of wrk at CONNECTIONS (64) on POST /v1/recommend, with a retrain
#      started at 1/4, 1/2 and 3/4 of the run (each a new seed, so each swaps in a new model);
#      every answer must be 2xx and no socket may fail.
#   2. Retrains one after another until ten have succeeded; resident memory (VmRSS) after the
#      tenth must be within 10 % of after the first.
# Models are saved to a temporary store, as in production. Exits non-zero if a check fails.
#
#   cargo build --release && scripts/soak.sh
#   DURATION=20 scripts/soak.sh
set -euo pipefail

cd "$(dirname "$0")/.."
. scripts/lib.sh
DATA=${DATA:-../shared/data/netflix_incomplete.txt}
PORT=${PORT:-18081}
DURATION=${DURATION:-60}
CONNECTIONS=${CONNECTIONS:-64}
TOKEN=soak-token
BASE="http://127.0.0.1:$PORT"
BIN=target/release/mixrec
AUTH="Authorization: Bearer $TOKEN"

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
[[ -x $BIN ]] || { echo "build first: cargo build --release" >&2; exit 1; }
[[ -f $DATA ]] || { echo "no snapshot at $DATA (set DATA=...)" >&2; exit 1; }

work=$(mktemp -d)
server_pid=""
cleanup() {
    [[ -n $server_pid ]] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" || true
    rm -rf "$work"
}
trap cleanup EXIT

MIXREC_ADMIN_TOKEN=$TOKEN MIXREC__TRAINING__K=12 MIXREC__TRAINING__THREADS=1 \
    MIXREC__MODELS__DIR="$work/models" RUST_LOG=warn \
    "$BIN" serve --data "$DATA" --listen "127.0.0.1:$PORT" 2>"$work/server.log" &
server_pid=$!
wait_ready "$BASE" "$work/server.log"
recommend_lua "$BASE" "$work/recommend.lua"

seed=100
# Starts a retrain with a new seed and waits for it; prints its final state.
retrain() {
    seed=$((seed + 1))
    local job
    job=$(curl -fs -X POST -H "$AUTH" -H 'content-type: application/json' \
        -d "{\"seed\": $seed, \"force\": true}" "$BASE/admin/retrain" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
    [[ -n $job ]] || { echo "retrain refused"; return 1; }
    local state=""
    until [[ $state == succeeded || $state == failed || $state == cancelled ]]; do
        sleep 0.1
        state=$(curl -fs -H "$AUTH" "$BASE/admin/jobs/$job" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p')
    done
    echo "$state"
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"; }

echo "1. wrk -t2 -c$CONNECTIONS -d${DURATION}s --latency POST /v1/recommend, retrains at 1/4, 1/2, 3/4"
(
    for _ in 1 2 3; do
        sleep "$(awk "BEGIN {print $DURATION / 4}")"
        echo "retrain at ${SECONDS}s: $(retrain)" >>"$work/retrains"
    done
) &
retrains_pid=$!
wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$work/recommend.lua" "$BASE/v1/recommend" >"$work/wrk.txt"
wait "$retrains_pid"
wrk_figures "$work/wrk.txt"
sed 's/^/   /' "$work/retrains"
printf '   %s requests, %s req/s, p50 %s, p99 %s, non-2xx %s, socket errors %s\n' \
    "$TOTAL" "$RPS" "$P50" "$P99" "$NON2XX" "$ERRORS"
version=$(curl -fs "$BASE/v1/model" | sed -n 's/.*"version":\([0-9]*\).*/\1/p')
echo "   model version now $version"
failed=0
[[ $NON2XX == 0 && $ERRORS == 0 ]] || { echo "FAIL: errors under load"; failed=1; }
[[ $(grep -c succeeded "$work/retrains") == 3 ]] || { echo "FAIL: a retrain did not succeed"; failed=1; }

echo "2. resident memory over ten more retrains"
[[ $(retrain) == succeeded ]] || { echo "FAIL: retrain 1"; exit 1; }
first=$(rss_kib)
for i in $(seq 2 10); do
    [[ $(retrain) == succeeded ]] || { echo "FAIL: retrain $i"; exit 1; }
done
tenth=$(rss_kib)
ratio=$(awk "BEGIN {printf \"%.3f\", $tenth / $first}")
echo "   VmRSS after retrain 1: $((first / 1024)) MiB; after retrain 10: $((tenth / 1024)) MiB; ratio $ratio"
awk "BEGIN {exit !($ratio <= 1.10)}" || { echo "FAIL: memory grew more than 10 %"; failed=1; }
echo "   saved models kept: $(ls "$work/models" | tr '\n' ' ')"
exit "$failed"
