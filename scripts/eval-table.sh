#!/usr/bin/env bash
# The README's table of methods × data sets: held-out RMSE, MAE and training seconds on a 10 %
# split (split seed 0). Data: the seed's Netflix subset (77 % filled) and a 4 %-dense thinning
# of it (every rating kept with probability 0.052, Python's random seeded with 7).
#
#     scripts/eval-table.sh [DATA_DIR]      # default ../shared/data
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data}"
cargo build --release --quiet
bin=./target/release/mixrec
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 - "$data/netflix_incomplete.txt" "$work/sparse.csv" <<'PY'
import random, sys
random.seed(7)
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as out:
    out.write("user,item,rating\n")
    for u, line in enumerate(src):
        for l, x in enumerate(line.split()):
            if x != "0" and random.random() < 0.052:
                out.write(f"{u},{l},{x}\n")
PY

row() {  # data-set label, then mixrec eval flags; $FLAGS names the row ("baselines": all four)
  local label="$1"; shift
  "$bin" eval "$@" --json | python3 -c '
import json, sys
label, flags = sys.argv[1], sys.argv[2]
for m in json.load(sys.stdin)["methods"]:
    is_model = m["method"] in ("mixture", "gaussian pLSA")
    if is_model != (flags == "baselines"):
        name = m["method"] if flags == "baselines" else flags
        print("| %s | %s | %.4f | %.4f | %.2f |" % (label, name, m["rmse"], m["mae"], m["seconds"]))
' "$label" "$FLAGS"
}

echo "| data | method | RMSE | MAE | train s |"
echo "|---|---|---|---|---|"
for set in "netflix subset:$data/netflix_incomplete.txt" "4 % thinning:$work/sparse.csv"; do
  label="${set%%:*}"; file="${set#*:}"
  FLAGS=baselines row "$label" --data "$file" --k 12 --model mixture --max-iter 1
  FLAGS="seed configuration (K = 12, numpy seed 1)" row "$label" --data "$file" --k 12 --preset seed --seed 1
  FLAGS="mixture default (K = 12)" row "$label" --data "$file" --k 12
  FLAGS="mixture default (--k auto)" row "$label" --data "$file" --k auto --k-range 1:16
  FLAGS="Gaussian pLSA (K = 12)" row "$label" --data "$file" --k 12 --model gpl
  FLAGS="Gaussian pLSA (K = 24)" row "$label" --data "$file" --k 24 --model gpl
done
