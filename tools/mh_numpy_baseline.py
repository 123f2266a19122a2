#!/usr/bin/env python3
"""Plain NumPy baseline for `inferkit mh` (docs/mh.md): the same Ising chains written the
way one would in Python, timed on this machine.

  * per-site Metropolis sweep (shuffled rows x shuffled columns, shared random spin), plain;
  * the same sweep with the coupled alternative chain and pruning (stochastic derivatives);
  * a vectorized checkerboard Metropolis sweep (the fastest plain NumPy form; a different
    site order, same stationary distribution), plain only.

Prints steps/s for each and the time one full Ising optimization (iters x sweeps x L^2 steps
with derivatives) would take at the measured rate. Usage:
  /opt/ikvenv/bin/python tools/mh_numpy_baseline.py [--L 12] [--sweeps 20] [--T 2.3]
"""
import argparse
import time

import numpy as np


def neighbour_sum(s, i, j, L):
    return s[(i + 1) % L, j] + s[(i - 1) % L, j] + s[i, (j + 1) % L] + s[i, (j - 1) % L]


def energy(s):
    return -float(np.sum(s * (np.roll(s, 1, 0) + np.roll(s, 1, 1))))


def plain_sweep(s, T, L, rng):
    for i in rng.permutation(L):
        for j in rng.permutation(L):
            s2 = 1 if rng.random() < 0.5 else -1
            ds = s2 - s[i, j]
            if ds == 0:
                continue
            lr = ds * neighbour_sum(s, i, j, L) / T
            if lr >= 0 or rng.random() >= 1 - np.exp(lr):
                s[i, j] = s2


def coupled_sweep(s, alt, T, L, rng):
    """One sweep of the primal chain s and its alternative alt = [state or None, weight]."""
    for i in rng.permutation(L):
        for j in rng.permutation(L):
            s2 = 1 if rng.random() < 0.5 else -1
            ds = s2 - s[i, j]
            a, da = 1.0, 0.0
            if ds != 0:
                lr = ds * neighbour_sum(s, i, j, L) / T
                if lr < 0:
                    a = np.exp(lr)
                    da = a * (-lr / T)  # d/dT of exp(c/T) = exp(c/T) * (-c/T^2)
            u = rng.random()
            accept = u >= 1 - a
            y = alt[0]
            if y is not None:
                dsy = s2 - y[i, j]
                if dsy != 0:
                    lry = dsy * neighbour_sum(y, i, j, L) / T
                    if lry >= 0 or u >= 1 - np.exp(lry):
                        y[i, j] = s2
            w = da / (1 - a) if (da > 0 and not accept) else (-da / a if (da < 0 and accept) else 0.0)
            if w != 0:
                keep = True
                if y is not None:
                    p = abs(w) / (abs(w) + abs(alt[1]))
                    keep = rng.random() < p
                    if keep:
                        w /= p
                    else:
                        alt[1] /= 1 - p
                if keep:
                    y = s.copy()
                    if not accept:
                        y[i, j] = s2
                    alt[0], alt[1] = y, w
            if accept:
                s[i, j] = s2
            if alt[0] is not None and np.array_equal(alt[0], s):
                alt[0] = None


def checkerboard_sweep(s, T, L, rng, masks):
    for m in masks:
        nb = np.roll(s, 1, 0) + np.roll(s, -1, 0) + np.roll(s, 1, 1) + np.roll(s, -1, 1)
        s2 = np.where(rng.random((L, L)) < 0.5, 1, -1)
        lr = (s2 - s) * nb / T
        acc = m & (rng.random((L, L)) < np.exp(np.minimum(lr, 0)))
        s[acc] = s2[acc]


def rate(fn, steps):
    # process CPU time, like the C++ side's thread CPU time: robust on a shared machine
    t0 = time.process_time()
    fn()
    return steps / (time.process_time() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--L", type=int, default=12)
    ap.add_argument("--sweeps", type=int, default=50, help="sweeps per measurement")
    ap.add_argument("--T", type=float, default=2.3)
    ap.add_argument("--iters", type=int, default=1000, help="optimization iterations (for the estimate)")
    ap.add_argument("--opt-sweeps", type=int, default=1100, help="sweeps per gradient (for the estimate)")
    args = ap.parse_args()
    if args.L < 2 or args.sweeps < 1 or args.T <= 0:
        raise SystemExit("error: need L >= 2, sweeps >= 1, T > 0")
    L, n, T = args.L, args.sweeps, args.T
    rng = np.random.default_rng(1)
    steps = n * L * L

    s = np.ones((L, L), dtype=np.int64)
    r_plain = rate(lambda: [plain_sweep(s, T, L, rng) for _ in range(n)], steps)

    s = np.ones((L, L), dtype=np.int64)
    alt = [None, 0.0]
    r_dmh = rate(lambda: [coupled_sweep(s, alt, T, L, rng) for _ in range(n)], steps)

    ii, jj = np.indices((L, L))
    masks = [((ii + jj) % 2) == 0, ((ii + jj) % 2) == 1]
    s = np.ones((L, L), dtype=np.int64)
    reps = 20 * n
    r_vec = rate(lambda: [checkerboard_sweep(s, T, L, rng, masks) for _ in range(reps)], reps * L * L)

    full = args.iters * args.opt_sweeps * L * L
    print(f"numpy ising {L}x{L} T={T}: plain per-site        {r_plain / 1e6:8.4f} M steps/s")
    print(f"numpy ising {L}x{L} T={T}: with derivatives      {r_dmh / 1e6:8.4f} M steps/s")
    print(f"numpy ising {L}x{L} T={T}: checkerboard (plain)  {r_vec / 1e6:8.4f} M steps/s")
    print(f"numpy full Ising optimization ({args.iters} iters x {args.opt_sweeps} sweeps) estimated "
          f"{full / r_dmh:.0f} s with derivatives")


if __name__ == "__main__":
    main()
