#!/usr/bin/env python3
"""Would per-class offsets on an ensemble's output gain anything beyond PublicTest itself?

usage: scripts/class_offsets.py --weights W1,W2,... [--halvings N] [--seed S] NAME=PREDICTIONS.csv ...

The members' PREDICTIONS.csv are what `emocam-train eval --weights W --tta 1 --out DIR`
writes, as for scripts/ensemble_search.py, and --weights are their ensemble weights. The
ensemble's probabilities P (weighted mean, as emocam computes them) get seven offsets b, one
per class, and the label is argmax(log P + b). The offsets are fitted by coordinate search
(each in -1..1, step 0.05, three sweeps) to maximise accuracy. This prints two figures.
- Fitted and scored on all images: how far offsets can overfit the set they are chosen on.
- Fitted on a random half and scored on the other half, both ways, for N halvings: what they
  are worth on images they did not see. That is the figure to believe.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ensemble_search import fail, load_members  # noqa: E402

STEPS = np.linspace(-1, 1, 41)


def fit(logp, labels):
    b = np.zeros(7)
    best = np.mean(logp.argmax(1) == labels)
    for _ in range(3):
        for c in range(7):
            for d in STEPS:
                t = b.copy()
                t[c] = d
                acc = np.mean((logp + t).argmax(1) == labels)
                if acc > best + 1e-12:
                    best, b = acc, t
    return b, best


def main(argv):
    weights, halvings, seed, members = None, 10, 1, []
    args = iter(argv)
    for a in args:
        try:
            if a == "--weights":
                weights = [float(v) for v in next(args).split(",")]
            elif a == "--halvings":
                halvings = int(next(args))
            elif a == "--seed":
                seed = int(next(args))
            elif a in ("-h", "--help"):
                print(__doc__)
                return
            elif "=" in a:
                members.append(a.split("=", 1))
            else:
                fail(f"{a}: expected NAME=PREDICTIONS.csv (see --help)")
        except StopIteration:
            fail(f"{a}: needs a value (see --help)")
        except ValueError:
            fail(f"{a}: not a number (see --help)")
    if not members:
        fail("no members given (see --help)")
    if weights is None or len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0:
        fail("--weights: one weight of 0 or more per member, not all 0")
    if halvings < 1:
        fail("--halvings: want 1 or more")
    labels, probs = load_members(members)
    mix = sum(w * p for w, p in zip(weights, probs)) / sum(weights)
    logp = np.log(np.clip(mix, 1e-9, 1))
    n = len(labels)
    base = np.mean(logp.argmax(1) == labels)
    b, acc = fit(logp, labels)
    print(f"ensemble: {100 * base:.2f} % ({int(round(base * n))} of {n})")
    print(f"offsets fitted and scored on all {n}: {100 * acc:.2f} % ({int(round(acc * n))} of {n}), "
          f"offsets {' '.join(f'{v:+.2f}' for v in b)}")
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(halvings):
        perm = rng.permutation(n)
        halves = perm[: n // 2], perm[n // 2:]
        for fit_on, score_on in (halves, halves[::-1]):
            b, _ = fit(logp[fit_on], labels[fit_on])
            before = np.mean(logp[score_on].argmax(1) == labels[score_on])
            after = np.mean((logp[score_on] + b).argmax(1) == labels[score_on])
            gains.append(after - before)
    gains = 100 * np.array(gains)
    print(f"fitted on one half, scored on the other ({len(gains)} times): "
          f"{gains.mean():+.2f} points on average (sd {gains.std():.2f}, "
          f"{gains.min():+.2f} to {gains.max():+.2f})")


if __name__ == "__main__":
    main(sys.argv[1:])
