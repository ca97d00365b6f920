#!/usr/bin/env bash
# Time per EM iteration against ratings (1 M, 10 M, 100 M on a 17,770-item catalogue) and K
# (4, 12, 32), with the snapshot's load time and the process's peak RSS: the scaling table of
# docs/speed.md. Synthetic snapshots from `mixrec synth` (seed 1), converted to binary once;
# each cell is the median `seconds` of the final fit's 6 iterations (`fit -v`: K given, one
# restart, --tol 0; the prior strength is still chosen on a held-out share first, those trial
# fits are not counted), the load seconds `fit -v` prints, and the peak RSS of the whole process.
# Needs ~3 GB of memory and ~5 GB of disk.
#
#     scripts/scale-bench.sh [WORK_DIR]      # default: a temporary folder, removed after
#     SIZES="10000000" KS="12" scripts/scale-bench.sh /tmp/scale
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${MIXREC_BIN:-./target/release/mixrec}"
[[ -n ${MIXREC_BIN:-} ]] || cargo build --release --quiet
work="${1:-$(mktemp -d)}"
[[ $# -ge 1 ]] || trap 'rm -rf "$work"' EXIT

echo "| ratings | users | K | s / iteration (median of 6) | ns / (rating · type) | load s | peak RSS MB |"
echo "|---|---|---|---|---|---|---|"
for ratings in ${SIZES:-1000000 10000000 100480507}; do
  case $ratings in
    1000000) users=4800 ;;
    10000000) users=48000 ;;
    100480507) users=480189 ;;
    *) users=$((ratings / 209)) ;;
  esac
  snap="$work/synth-$ratings.bin"
  if [[ ! -f $snap ]]; then
    "$bin" synth --users "$users" --items 17770 --ratings "$ratings" --types 12 --seed 1 --out "$work/synth.csv"
    "$bin" convert --data "$work/synth.csv" --out "$snap" --to binary
    rm -f "$work/synth.csv"
  fi
  for k in ${KS:-4 12 32}; do
    python3 - "$bin" "$snap" "$ratings" "$users" "$k" <<'PY'
import re, resource, statistics, subprocess, sys
bin, snap, ratings, users, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
run = subprocess.run([bin, "fit", "--data", snap, "--k", str(k), "--n-init", "1", "--max-iter", "6",
                      "--tol", "0", "-v"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
lines = run.stderr.splitlines()
load = float(re.search(r"loaded \d+ ratings in ([0-9.]+) s", run.stderr).group(1))
iters = [float(m.group(1)) for m in (re.search(r"  ([0-9.]+) s  ETA", l) for l in lines) if m]
final = iters[-6:]  # the final fit's iterations come last
med = statistics.median(final)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print("| %s | %s | %d | %.4f | %.2f | %.3f | %.0f |" % (f"{ratings:,}", f"{users:,}", k, med,
      med / (ratings * k) * 1e9, load, rss))
PY
  done
done
