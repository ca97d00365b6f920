#!/usr/bin/env bash
# The README's table of methods × data sets: held-out RMSE, MAE and training seconds on a 10 %
# split, for split seed 0 and as the mean over split seeds 0, 1 and 2, every method on the same
# splits. Data sets:
#   - the seed's Netflix subset (1200 × 1200, 77 % filled);
#   - its 4 % thinning (every rating kept with probability 0.052, Python's random seeded with 7);
#   - netflix_longtail.csv (real ratings thinned to a real catalogue's long tail, 3.2 % dense);
#   - the synthetic long tail `mixrec synth --users 700 --items 9000 --ratings 100000 --types 8
#     --seed 7` (1.6 % dense).
# Methods: the four baselines (the bias with its ridge tuned), ALS MF (rank and λ tuned), the
# seed configuration (K = 12, numpy seed 1), the default (everything chosen inside training),
# Gaussian pLSA (K = 24) and the low-rank mixture (everything chosen inside training).
#
#     scripts/eval-table.sh [DATA_DIR]          # default ../shared/data
#     SEEDS="0" scripts/eval-table.sh           # split seed 0 only (faster)
#     SETS="longtail synth" scripts/eval-table.sh
#
# Takes about 40 minutes on 2 cores, most of it the low-rank mixture's search on the dense subset.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data}"
seeds="${SEEDS:-0 1 2}"
sets="${SETS:-netflix thinned longtail synth}"
cargo build --release --quiet
bin=./target/release/mixrec
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 - "$data/netflix_incomplete.txt" "$work/thinned.csv" <<'PY'
import random, sys
random.seed(7)
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as out:
    out.write("user,item,rating\n")
    for u, line in enumerate(src):
        for l, x in enumerate(line.split()):
            if x != "0" and random.random() < 0.052:
                out.write(f"{u},{l},{x}\n")
PY
"$bin" synth --users 700 --items 9000 --ratings 100000 --types 8 --seed 7 --out "$work/synth.csv"

file_of() {
  case "$1" in
    netflix) echo "$data/netflix_incomplete.txt" ;;
    thinned) echo "$work/thinned.csv" ;;
    longtail) echo "$data/netflix_longtail.csv" ;;
    synth) echo "$work/synth.csv" ;;
  esac
}

# One JSON line per (set, seed, run): {"set", "seed", "label", "eval": <mixrec eval --json>}.
# Seed 0 over every set first, so a run cut short still has the seed-0 table. RUNS=path keeps the
# lines (and a rerun with the same path only prints the table from them: SKIP_RUNS=1).
runs="${RUNS:-$work/runs.jsonl}"
for seed in $seeds; do
  [ -n "${SKIP_RUNS:-}" ] && break
  for set in $sets; do
    file="$(file_of "$set")"
    run() {  # label, then eval flags
      local label="$1"; shift
      "$bin" eval --data "$file" --split-seed "$seed" --json "$@" |
        python3 -c 'import json,sys; print(json.dumps({"set": sys.argv[1], "seed": int(sys.argv[2]), "label": sys.argv[3], "eval": json.load(sys.stdin)}))' \
          "$set" "$seed" "$label" >>"$runs"
    }
    run "default"
    run "seed configuration (K = 12, numpy seed 1)" --no-als --k 12 --preset seed --seed 1
    run "Gaussian pLSA (K = 24)" --no-als --k 24 --model gpl
    run "low-rank mixture (mfa)" --no-als --model mfa
  done
done

python3 - "$runs" <<'PY'
import json, sys
names = {"netflix": "netflix subset", "thinned": "4 % thinning", "longtail": "netflix long tail",
         "synth": "synthetic long tail"}
rows = {}   # (set, method) -> {seed: (rmse, mae, seconds, detail)}
order = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    for m in r["eval"]["methods"]:
        baseline = m["method"] in ("global mean", "item mean", "user mean", "user+item bias", "ALS MF")
        if baseline and r["label"] != "default":
            continue
        method = m["method"] if baseline else r["label"]
        key = (r["set"], method)
        if key not in rows:
            rows[key] = {}
            order.append(key)
        rows[key][r["seed"]] = (m["rmse"], m["mae"], m["seconds"], "; ".join(m.get("details", [])))
print("| data | method | RMSE (seed 0) | MAE (seed 0) | RMSE (mean of seeds) | train s (seed 0) | chosen (seed 0) |")
print("|---|---|---|---|---|---|---|")
for key in order:
    by_seed = rows[key]
    first = by_seed[min(by_seed)]
    mean = sum(v[0] for v in by_seed.values()) / len(by_seed)
    print("| %s | %s | %.4f | %.4f | %.4f (%d) | %.2f | %s |" % (
        names[key[0]], key[1], first[0], first[1], mean, len(by_seed), first[2], first[3]))
PY
