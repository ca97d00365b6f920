#!/usr/bin/env bash
# Contract test against the live service: starts the built binary on a free loopback port (the
# embedded demo, quick training, an admin token) and runs schemathesis over openapi.yaml. Fails
# on any 5xx and on any answer the spec does not allow (status, content type, headers, body).
#
#   scripts/schemathesis.sh               # after cargo test / cargo build
#   MIXREC_BIN=target/release/mixrec SCHEMATHESIS_EXAMPLES=500 scripts/schemathesis.sh
#
# schemathesis (pinned) is installed once into a venv under ~/.cache/mixrec; later runs reuse it.
# The server is stopped by its PID with SIGTERM and must exit 0 (graceful shutdown).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

version=4.32.5
examples="${SCHEMATHESIS_EXAMPLES:-300}"
seed="${SCHEMATHESIS_SEED:-1}"
bin="${MIXREC_BIN:-target/debug/mixrec}"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/mixrec/schemathesis-$version"
st="$venv/bin/schemathesis"

if ! "$st" --version 2>/dev/null | grep -qx "schemathesis, version $version"; then
  echo "installing schemathesis $version into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi
if [ ! -x "$bin" ]; then
  echo "no $bin: build it first (cargo test builds target/debug/mixrec)" >&2
  exit 1
fi

work="$(mktemp -d)"
token="st-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
# One training thread: retrains that schemathesis starts leave a core to the requests.
MIXREC_ADMIN_TOKEN="$token" MIXREC__TRAINING__K=3 MIXREC__TRAINING__N_INIT=1 \
  MIXREC__MODELS__DIR="$work/models" MIXREC__TRAINING__MAX_ITER=30 MIXREC__TRAINING__THREADS=1 RUST_LOG=warn,mixrec=info \
  "$bin" serve --listen 127.0.0.1:0 >/dev/null 2>"$work/server.log" &
pid=$!
stop() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid"
  fi
}
trap 'kill -TERM "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

addr=""
for _ in $(seq 600); do
  addr="$(sed -n 's/.*listening addr=\([0-9.:]*\).*/\1/p' "$work/server.log")"
  if [ -n "$addr" ] || ! kill -0 "$pid" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -z "$addr" ]; then
  echo "the server did not start:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
python3 - "$addr" <<'EOF'
import sys, time, urllib.request
for _ in range(600):
    try:
        if urllib.request.urlopen(f"http://{sys.argv[1]}/readyz", timeout=2).status == 200:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit("the server never became ready")
EOF

status=0
# From the scratch folder: schemathesis leaves its example database and reports there.
(cd "$work" && timeout 600 "$st" run "$root/openapi.yaml" --url "http://$addr" \
  --header "Authorization: Bearer $token" \
  --checks "${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}" \
  --max-examples "$examples" --seed "$seed" --generation-database none \
  --no-color --output-truncate true) || status=$?

server=0
stop || server=$?
if [ "$server" -ne 0 ]; then
  echo "the server exited $server after SIGTERM (want 0):" >&2
  tail -n 40 "$work/server.log" >&2
  status=1
fi
if grep -q 'panicked' "$work/server.log"; then
  echo "the server panicked during the run:" >&2
  grep -A5 'panicked' "$work/server.log" >&2
  status=1
fi
exit "$status"
