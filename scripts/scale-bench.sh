#!/usr/bin/env bash
# Time per EM iteration against ratings (1 M, 10 M, 100 M on a 17,770-item catalogue) and K
# (4, 12, 32): the README's scaling table. Synthetic snapshots from `mixrec synth` (seed 1),
# converted to binary once; each cell is the median `seconds` of 6 iterations of the default
# model (one restart, --tol 0), read from `fit -v`. Needs ~3 GB of memory and ~5 GB of disk.
#
#     scripts/scale-bench.sh [WORK_DIR]      # default: a temporary folder, removed after
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=./target/release/mixrec
work="${1:-$(mktemp -d)}"
[[ $# -ge 1 ]] || trap 'rm -rf "$work"' EXIT

echo "| ratings | users | K | s / iteration (median of 6) | ns / (rating · type) |"
echo "|---|---|---|---|---|"
for spec in "1000000 4800" "10000000 48000" "100480507 480189"; do
  read -r ratings users <<<"$spec"
  snap="$work/synth-$ratings.bin"
  if [[ ! -f $snap ]]; then
    "$bin" synth --users "$users" --items 17770 --ratings "$ratings" --types 12 --seed 1 --out "$work/synth.csv"
    "$bin" convert --data "$work/synth.csv" --out "$snap" --to binary
    rm -f "$work/synth.csv"
  fi
  for k in 4 12 32; do
    "$bin" fit --data "$snap" --k "$k" --n-init 1 --max-iter 6 --tol 0 -v 2>&1 >/dev/null |
      python3 -c '
import re, statistics, sys
ratings, users, k = (int(a) for a in sys.argv[1:])
secs = [float(m.group(1)) for m in (re.search(r"  ([0-9.]+) s  ETA", l) for l in sys.stdin) if m]
med = statistics.median(secs)
print("| %s | %s | %d | %.4f | %.2f |" % (f"{ratings:,}", f"{users:,}", k, med, med / (ratings * k) * 1e9))
' "$ratings" "$users" "$k"
  done
done
