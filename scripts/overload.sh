#!/usr/bin/env bash
# Overload and slow clients on loopback (needs wrk and python3), on the embedded demo catalogue:
#   1. GET /v1/users/u0001/recommendations?n=10 with the default limit (256 requests at once)
#   2. the same with server.max_concurrent_requests = LIMIT (default 1): part of it is shed
#   3. the same with the default limit while SLOW (default 1000) connections each hold half a
#      request head (slowloris), then how long the server took to close them
#      (server.header_read_timeout_ms, default 10 s)
#   4. SIGTERM, then ctrl-c (SIGINT), each with 100 idle keep-alive connections open: how long
#      until the process exits, and its status (server.shutdown_delay_ms, default 5 s, applies
#      to SIGTERM only)
# Each wrk run: DURATION seconds at CONNECTIONS connections, 2 threads, --latency.
#
#   cargo build --release && scripts/overload.sh
#   BIN=target/debug/mixrec LIMIT=2 SLOW=2000 scripts/overload.sh
set -euo pipefail

cd "$(dirname "$0")/.."
. scripts/lib.sh
BIN=${BIN:-target/release/mixrec}
PORT=${PORT:-18081}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
LIMIT=${LIMIT:-1}
SLOW=${SLOW:-1000}
BASE="http://127.0.0.1:$PORT"
URL="$BASE/v1/users/u0001/recommendations?n=10"

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
[[ -x $BIN ]] || { echo "build first: cargo build --release (or set BIN)" >&2; exit 1; }

work=$(mktemp -d)
server_pid=""
stop() {
    [[ -n $server_pid ]] && kill -INT "$server_pid" 2>/dev/null && wait "$server_pid" || true
    server_pid=""
}
trap 'stop; rm -rf "$work"' EXIT

start() { # extra environment, e.g. MIXREC__SERVER__MAX_CONCURRENT_REQUESTS=1
    env RUST_LOG=warn MIXREC__MODELS__DIR="$work/models" "$@" "$BIN" serve --listen "127.0.0.1:$PORT" 2>>"$work/server.log" &
    server_pid=$!
    wait_ready "$BASE" "$work/server.log"
}

run() { # name
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$URL" >"$work/$1.txt"
    wrk_figures "$work/$1.txt"
    printf '%-16s %10s req/s  p50 %-9s p99 %-9s non-2xx %s of %s\n' \
        "$1" "$RPS" "$P50" "$P99" "$NON2XX" "$TOTAL"
}

shed_total() {
    curl -fs "$BASE/metrics" | awk '$1 == "mixrec_http_shed_total" {print $2}'
}

echo "wrk -t2 -c$CONNECTIONS -d${DURATION}s --latency $URL; $(nproc) cores shared by server and wrk"
start
run default-limit
echo "  shed: $(shed_total) (mixrec_http_shed_total)"
stop

start MIXREC__SERVER__MAX_CONCURRENT_REQUESTS="$LIMIT"
run "limit-$LIMIT"
echo "  shed: $(shed_total) (mixrec_http_shed_total)"
stop

start
python3 - "$PORT" "$SLOW" >"$work/slow.txt" <<'PY' &
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
conns = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    conns.append(s)
opened = time.monotonic()
print(f"{n} slow connections open", flush=True)
closed = []
for s in conns:
    s.settimeout(120)
    try:
        s.recv(1)  # b"" at close; no answer ever comes
    except OSError:
        pass
    closed.append(time.monotonic() - opened)
print(f"all {n} closed by the server; the last {max(closed):.1f} s after the last opened")
PY
slow_pid=$!
until grep -q open "$work/slow.txt" 2>/dev/null; do
    kill -0 "$slow_pid" 2>/dev/null || { echo "the slow clients failed"; exit 1; }
    sleep 0.1
done
run "with-$SLOW-slow"
wait "$slow_pid"
sed 's/^/  /' "$work/slow.txt"
stop

for sig in TERM INT; do
    start
    python3 - "$PORT" "$server_pid" "$sig" <<'PY'
import os, signal, socket, sys, time
port, pid, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
idle = []
for _ in range(100):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(4096)
    idle.append(s)
started = time.monotonic()
os.kill(pid, getattr(signal, "SIG" + name))
while True:  # the server is the shell's child: poll until it is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    if open(f"/proc/{pid}/stat").read().split()[2] == "Z":
        break
    time.sleep(0.01)
print(f"SIG{name} with 100 idle keep-alive connections: gone after {time.monotonic() - started:.2f} s")
PY
    wait "$server_pid" && echo "  exit status 0" || echo "  exit status $?"
    server_pid=""
done
