#!/usr/bin/env bash
# Does `training.threads` bound a training's cores? A benchmark, not a test: for each thread
# count it starts the server on a synthetic snapshot, runs one retrain, and compares the
# server process's CPU time over the retrain (utime + stime from /proc/PID/stat, so loading,
# fitting, saving and the polls it answers) with the retrain's wall time. With
# `training.threads = 1` a retrain may use one core, so CPU time stays within 1.2 x wall time
# (the script fails otherwise); with 0 (one thread per core) it uses them all. It also counts
# the pool threads (`mixrec-train-N`) that ran during the retrain, from /proc/PID/task, which
# shows the pool's size even when other work on the machine keeps CPU / wall down.
#
#   cargo build --release && scripts/threads-bench.sh
#   BIN=target/debug/mixrec RATINGS=500000 scripts/threads-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

BIN=${BIN:-target/release/mixrec}
RATINGS=${RATINGS:-2000000}
PORT=${PORT:-18090}
TOKEN=threads-bench-token
BASE="http://127.0.0.1:$PORT"
[[ -x $BIN ]] || { echo "build first: cargo build --release (or set BIN=...)" >&2; exit 1; }
[[ -r /proc/self/stat ]] || { echo "needs /proc (Linux)" >&2; exit 1; }

work=$(mktemp -d)
server_pid=""
cleanup() {
    [[ -n $server_pid ]] && kill -INT "$server_pid" 2>/dev/null && wait "$server_pid" || true
    rm -rf "$work"
}
trap cleanup EXIT

"$BIN" synth --users $((RATINGS / 40)) --items 2000 --ratings "$RATINGS" --types 8 --seed 1 \
    --out "$work/ratings.csv" 2>/dev/null
"$BIN" convert --data "$work/ratings.csv" --to binary --out "$work/ratings.bin"

# CPU seconds (user + system) the process has used: fields 14 and 15 of /proc/PID/stat, in
# clock ticks (the command name in field 2 has no spaces here).
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"
}

# "name seconds" for each training thread of process $1 (the pool's threads are named
# mixrec-train-N).
pool_seconds() {
    local hz task
    hz=$(getconf CLK_TCK)
    for task in /proc/"$1"/task/*; do
        grep -q '^mixrec-train' "$task/comm" 2>/dev/null || continue
        awk -v hz="$hz" -v name="$(cat "$task/comm")" '{ printf "%s %.3f\n", name, ($14 + $15) / hz }' "$task/stat"
    done
}

# How many training threads used more than 0.05 s of CPU between snapshots $1 and $2.
busy_threads() {
    join <(sort "$1") <(sort "$2") | awk '$3 - $2 > 0.05 { n++ } END { print n + 0 }'
}

# One retrain with `training.threads = $1`: prints "threads cpu wall ratio busy-threads".
measure() {
    local threads=$1
    MIXREC_ADMIN_TOKEN=$TOKEN MIXREC__TRAINING__THREADS=$threads MIXREC__TRAINING__K=4 \
        MIXREC__TRAINING__N_INIT=1 MIXREC__TRAINING__MAX_ITER=40 MIXREC__TRAINING__TOL=0 \
        MIXREC__TRAINING__HOLDOUT=0 MIXREC__MODELS__DIR="" RUST_LOG=warn \
        "$BIN" serve --data "$work/ratings.bin" --listen "127.0.0.1:$PORT" 2>"$work/server.log" &
    server_pid=$!
    wait_ready "$BASE" "$work/server.log" 3000
    local cpu0 t0 job cpu1 t1
    cpu0=$(cpu_seconds "$server_pid")
    pool_seconds "$server_pid" >"$work/pool0"
    t0=$(date +%s.%N)
    job=$(curl -fs -X POST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        -d '{"seed": 2, "force": true}' "$BASE/admin/retrain" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
    until curl -fs -H "Authorization: Bearer $TOKEN" "$BASE/admin/jobs/$job" |
        grep -qE '"state":"(succeeded|failed|cancelled)"'; do
        sleep 0.05
    done
    t1=$(date +%s.%N)
    cpu1=$(cpu_seconds "$server_pid")
    pool_seconds "$server_pid" >"$work/pool1"
    local busy
    busy=$(busy_threads "$work/pool0" "$work/pool1")
    kill -INT "$server_pid" && wait "$server_pid"
    server_pid=""
    awk -v n="$threads" -v c0="$cpu0" -v c1="$cpu1" -v t0="$t0" -v t1="$t1" -v b="$busy" \
        'BEGIN { printf "%s %.3f %.3f %.2f %s\n", n, c1 - c0, t1 - t0, (c1 - c0) / (t1 - t0), b }'
}

echo "$RATINGS ratings, K = 4, 40 EM iterations; $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
printf '%-17s %9s %9s %11s %16s\n' "training.threads" "CPU s" "wall s" "CPU / wall" "threads that ran"
status=0
for threads in 1 0; do
    measure "$threads" >"$work/figures"
    read -r n cpu wall ratio busy <"$work/figures"
    printf '%-17s %9s %9s %11s %16s\n' "$n" "$cpu" "$wall" "$ratio" "$busy"
    if [[ $n == 1 ]] && awk -v r="$ratio" 'BEGIN { exit !(r > 1.2) }'; then
        echo "threads = 1 used more than 1.2 cores" >&2
        status=1
    fi
done
exit $status
