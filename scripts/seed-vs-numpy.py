#!/usr/bin/env python3
"""How many times faster the whole `mixrec fit --preset seed` process is than the seed's numpy EM
(`scripts/seed_numpy.py`), measured as a ratio in one run: the issue's 15x target.

Each round runs every command once, in a rotated order (so no command always follows the same
one), and times the whole process: start, load, fit, output, exit. It prints each command's
median and range, the ratio of the medians against numpy, and the median of the rounds' own
ratios (a round's commands see the same moment of a shared host, so that figure moves least).
Before timing, each build's log-likelihood is checked against numpy's to 1e-9 (relative).

    cargo build --release && python3 scripts/seed-vs-numpy.py
    python3 scripts/seed-vs-numpy.py --rounds 20 /tmp/old/mixrec target/release/mixrec

Builds default to target/release/mixrec; several are compared in the same rounds.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def log_likelihood(cmd, pattern):
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    found = re.search(pattern, out)
    if not found:
        sys.exit(f"no log-likelihood in the output of {' '.join(cmd)}")
    return float(found.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bins", nargs="*", default=["target/release/mixrec"], help="mixrec builds")
    ap.add_argument("--data", default=os.path.join(HERE, "../../shared/data/netflix_incomplete.txt"))
    ap.add_argument("--k", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    if not os.path.isfile(args.data):
        sys.exit(f"no data at {args.data} (pass --data)")

    numpy = [sys.executable, os.path.join(HERE, "seed_numpy.py"), args.data, str(args.k), str(args.seed)]
    fits = [[b, "fit", "--data", args.data, "--k", str(args.k), "--preset", "seed", "--seed", str(args.seed)]
            for b in args.bins]
    want = log_likelihood(numpy, r"log_likelihood (?:np.float64\()?([-0-9.e]+)")
    for b, cmd in zip(args.bins, fits):
        got = log_likelihood(cmd + ["--json"], r'"log_likelihood":([^,}]+)')
        rel = abs(got - want) / abs(want)
        print(f"{b}: log-likelihood {got!r} against numpy's {want!r} (relative {rel:.1e})")
        if rel > 1e-9:
            sys.exit(f"{b} does not reproduce the seed's log-likelihood to 1e-9")

    cmds = fits + [numpy]
    names = args.bins + ["numpy"]
    times = [[] for _ in cmds]
    for r in range(args.rounds):
        order = list(range(len(cmds)))
        order = order[r % len(order):] + order[:r % len(order)]
        for i in order:
            times[i].append(timed(cmds[i]))

    print(f"{args.rounds} rounds, each command once a round in rotated order; {os.cpu_count()} CPUs: {cpu_name()}")
    for name, t in zip(names, times):
        print(f"  {name:40} median {statistics.median(t) * 1e3:8.1f} ms  ({min(t) * 1e3:.1f}-{max(t) * 1e3:.1f})")
    slow = times[-1]
    for name, t in zip(args.bins, times):
        pairs = [n / f for f, n in zip(t, slow)]
        print(f"  numpy / {name}: {statistics.median(slow) / statistics.median(t):.2f}x by medians, "
              f"rounds' median {statistics.median(pairs):.2f}x ({min(pairs):.2f}-{max(pairs):.2f})")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown processor"


if __name__ == "__main__":
    main()
