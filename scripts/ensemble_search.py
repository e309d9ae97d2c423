#!/usr/bin/env python3
"""Pick ensemble weights on PublicTest from members' saved probabilities.

usage: scripts/ensemble_search.py [--grid 0,0.5,1,2,3] [--all] [--geometric] NAME=PREDICTIONS.csv ...

Each PREDICTIONS.csv is what `emocam-train eval --weights W --data D --out DIR` writes
(DIR/predictions.csv: name, label, predicted, then the 7 probabilities), for the same images
in the same order. Every combination of weights from the grid is scored as emocam's
ensemble scores it (the weighted mean of the members' probabilities, then the arg max), and
the best ones are printed with accuracy, macro F1 and disgust recall. With --all every
member must have a weight above 0. With --geometric the members are combined by the weighted
mean of their log-probabilities instead (not what emocam does; for comparison). The figure
to report is the one `emocam-train eval --ensemble LIST` then measures; this only chooses
the weights.
"""
import csv
import itertools
import os
import sys

import numpy as np

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def fail(msg):
    sys.exit(os.path.basename(sys.argv[0]) + ": " + msg)


def load(path):
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        fail(f"{path}: {e.strerror}")
    if not rows or rows[0][:3] != ["name", "label", "predicted"] or len(rows[0]) != 10:
        fail(f"{path}: not an emocam-train eval predictions.csv")
    try:
        names = [r[0] for r in rows[1:]]
        labels = np.array([int(r[1]) for r in rows[1:]])
        probs = np.array([[float(v) for v in r[3:10]] for r in rows[1:]])
    except (ValueError, IndexError):
        fail(f"{path}: a malformed row")
    return names, labels, probs


def load_members(members):
    """Each (name, path)'s predictions, checked to cover the same images in the same order:
    (labels, [probabilities per member])."""
    loaded = [load(p) for _, p in members]
    names0, labels, _ = loaded[0]
    for (_, path), (names, lab, _) in zip(members, loaded):
        if names != names0 or not np.array_equal(lab, labels):
            fail(f"{path}: not the same images in the same order as {members[0][1]}")
    return labels, [p for _, _, p in loaded]


def scores(labels, pred):
    acc = float(np.mean(pred == labels))
    f1s, recalls = [], []
    for c in range(7):
        tp = np.sum((pred == c) & (labels == c))
        p = tp / max(1, np.sum(pred == c))
        r = tp / max(1, np.sum(labels == c))
        f1s.append(0.0 if p + r == 0 else 2 * p * r / (p + r))
        recalls.append(r)
    return acc, float(np.mean(f1s)), recalls


def main(argv):
    grid = [0, 0.5, 1, 2, 3]
    need_all = False
    geometric = False
    members = []
    args = iter(argv)
    for a in args:
        if a == "--grid":
            try:
                grid = [float(v) for v in next(args).split(",")]
            except (StopIteration, ValueError):
                fail("--grid needs comma-separated numbers")
        elif a == "--all":
            need_all = True
        elif a == "--geometric":
            geometric = True
        elif a in ("-h", "--help"):
            print(__doc__)
            return
        elif "=" in a:
            name, path = a.split("=", 1)
            members.append((name, path))
        else:
            fail(f"{a}: expected NAME=PREDICTIONS.csv (see --help)")
    if not members:
        fail("no members given (see --help)")
    labels, probs = load_members(members)
    terms = [np.log(np.clip(p, 1e-6, 1)) for p in probs] if geometric else probs
    for (name, _), p in zip(members, probs):
        acc, f1, rec = scores(labels, p.argmax(1))
        print(f"member {name}: accuracy {100 * acc:.2f} %, macro F1 {f1:.3f}, disgust recall {100 * rec[1]:.1f} %")
    results = []
    for ws in itertools.product(grid, repeat=len(members)):
        if sum(ws) == 0 or (need_all and min(ws) == 0):
            continue
        mix = sum(w * t for w, t in zip(ws, terms))
        acc, f1, rec = scores(labels, mix.argmax(1))
        results.append((acc, f1, rec[1], ws))
    results.sort(key=lambda r: (-r[0], -r[1]))
    rule = "geometric" if geometric else "arithmetic"
    print(f"best of {len(results)} weightings, {rule} mean ({', '.join(n for n, _ in members)}):")
    for acc, f1, dis, ws in results[:10]:
        w = " ".join(f"{v:g}" for v in ws)
        print(f"  {w:<20} accuracy {100 * acc:.2f} %, macro F1 {f1:.3f}, disgust recall {100 * dis:.1f} %")


if __name__ == "__main__":
    main(sys.argv[1:])
