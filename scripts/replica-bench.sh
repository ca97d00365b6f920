#!/usr/bin/env bash
# Replica figures on a synthetic snapshot: a trainer and two replicas sharing models through
# s3s-fs on loopback. Prints the replica start-up time (process start to /readyz 200: pointer,
# model and catalogue downloaded, checked and decoded), its VmRSS when ready, and the time from
# a retrain's job ending on the trainer to both replicas serving the new version.
#
#   mixrec synth --users 100000 --items 10000 --ratings 10000000 --types 8 --seed 1 \
#     --out /tmp/r10m.csv
#   scripts/replica-bench.sh /tmp/r10m.csv            # MIXREC_BIN, POLL_MS to change
#
# Needs s3s-fs on the PATH and curl. Every process it starts is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
data="$(realpath "$1")"
bin="${MIXREC_BIN:-target/release/mixrec}"
poll_ms="${POLL_MS:-1000}"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
s3_port="$(free_port)"
mkdir -p "$work/s3/models"
s3s-fs --host 127.0.0.1 --port "$s3_port" --access-key bench --secret-key bench-secret \
  "$work/s3" >/dev/null 2>&1 &
pids+=($!)
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1 \
  AWS_ENDPOINT="http://127.0.0.1:$s3_port" AWS_ALLOW_HTTP=true \
  MIXREC__MODELS__URL=s3://models/bench MIXREC__MODELS__POLL_INTERVAL_MS="$poll_ms" \
  MIXREC_ADMIN_TOKEN=bench-token MIXREC__TRAINING__K=8 MIXREC__TRAINING__N_INIT=1 \
  MIXREC__TRAINING__MAX_ITER=20 MIXREC__TRAINING__HOLDOUT=0 RUST_LOG=info

now() { date +%s.%N; }
ready() { curl -sf "http://$1/readyz" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["model_version"])' 2>/dev/null || true; }
wait_version() { until [ "$(ready "$1")" = "$2" ]; do sleep 0.02; done; }

t_port="$(free_port)"
"$bin" serve --role trainer --data "$data" --listen "127.0.0.1:$t_port" 2>"$work/trainer.log" &
pids+=($!)
until [ -n "$(ready "127.0.0.1:$t_port")" ]; do sleep 0.2; done
v1="$(ready "127.0.0.1:$t_port")"
echo "trainer ready, version $v1, VmHWM $(($(awk '/VmHWM/ {print $2}' "/proc/${pids[-1]}/status") / 1024)) MiB"

replicas=()
for i in 1 2; do
  port="$(free_port)"
  start="$(now)"
  "$bin" serve --role replica --listen "127.0.0.1:$port" 2>"$work/replica$i.log" &
  pid=$!
  pids+=("$pid")
  wait_version "127.0.0.1:$port" "$v1"
  end="$(now)"
  rss="$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")"
  hwm="$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")"
  echo "replica $i: ready in $(echo "$end - $start" | bc) s, VmRSS $((rss / 1024)) MiB (peak $((hwm / 1024)) MiB)"
  replicas+=("127.0.0.1:$port")
done

job="$(curl -sf -X POST -H 'Authorization: Bearer bench-token' -H 'Content-Type: application/json' \
  -d '{"force": true, "seed": 7}' "http://127.0.0.1:$t_port/admin/retrain" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
until curl -sf -H 'Authorization: Bearer bench-token' "http://127.0.0.1:$t_port/admin/jobs/$job" |
  grep -q '"state":"succeeded"'; do sleep 0.01; done
published="$(now)"
v2="$(ready "127.0.0.1:$t_port")"
for r in "${replicas[@]}"; do wait_version "$r" "$v2"; done
echo "retrain published (version $v2): both replicas serving it $(echo "$(now) - $published" | bc) s later (poll interval ${poll_ms} ms)"
