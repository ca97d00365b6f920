#!/usr/bin/env python3
"""The seed's EM for spherical Gaussian mixtures with missing entries, in numpy.

Used only as the speed baseline for `mixrec fit --preset seed` (README, "Figures") and as an
independent cross-check of its log-likelihood. Written from the algorithm as DESIGN.md states it
(0 = missing, minimum variance 0.25, a mean entry updated only where its posterior weight is at
least 1, stop when new_ll - old_ll <= 1e-6 * |new_ll|).

    python3 scripts/seed_numpy.py ../shared/data/netflix_incomplete.txt 12 1
"""
import sys

import numpy as np


def logsumexp(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def init(X, K, seed):
    np.random.seed(seed)
    n, _ = X.shape
    mu = X[np.random.choice(n, K, replace=False)]
    var = np.array([((X - mu[j]) ** 2).mean() for j in range(K)])
    return mu, var, np.ones(K) / K


def estep(X, mu, var, p):
    delta = (X != 0).astype(float)
    sq = (X ** 2).sum(axis=1)[:, None] + delta @ (mu.T ** 2) - 2 * X @ mu.T
    f = -delta.sum(axis=1)[:, None] / 2 * np.log(2 * np.pi * var)[None, :] - sq / (2 * var)
    f = f + np.log(p + 1e-16)
    lse = logsumexp(f, axis=1)
    return np.exp(f - lse[:, None]), lse.sum()


def mstep(X, post, mu, min_variance=0.25):
    n, _ = X.shape
    delta = (X != 0).astype(float)
    p = post.sum(axis=0) / n
    denom = post.T @ delta
    numer = post.T @ X
    upd = denom >= 1
    mu = mu.copy()
    mu[upd] = numer[upd] / denom[upd]
    sq = (X ** 2).sum(axis=1)[:, None] + delta @ (mu.T ** 2) - 2 * X @ mu.T
    var = np.maximum((post * sq).sum(axis=0) / (post * delta.sum(axis=1)[:, None]).sum(axis=0), min_variance)
    return mu, var, p


def run(X, mu, var, p):
    old = new = None
    iterations = 0
    while old is None or new - old > 1e-6 * abs(new):
        old = new
        post, new = estep(X, mu, var, p)
        mu, var, p = mstep(X, post, mu)
        iterations += 1
    return new, iterations


if __name__ == "__main__":
    path, K, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    X = np.loadtxt(path)
    ll, it = run(X, *init(X, K, seed))
    print(f"log_likelihood {ll!r} iterations {it}")
