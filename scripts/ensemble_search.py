#!/usr/bin/env python3
"""Pick ensemble weights on PublicTest from members' saved probabilities.

usage: scripts/ensemble_search.py [--grid 0,0.5,1,2,3] [--all] [--geometric] [--temp T]
           [--one NAME=ONE_VIEW.csv ...] [--ms NAME=MS ... --budget MS [--overhead MS]]
           [--group NAME,NAME,... ...] NAME=PREDICTIONS.csv ...

Each PREDICTIONS.csv is what `emocam-train eval --weights W --data D --out DIR` writes
(DIR/predictions.csv: name, label, predicted, then the 7 probabilities), for the same images
in the same order. Every combination of weights from the grid is scored as emocam's
ensemble scores it (the weighted mean of the members' probabilities, then the arg max), and
the best ones are printed with accuracy, macro F1 and disgust recall. With --all every
member must have a weight above 0. With --geometric the members are combined by the weighted
mean of their log-probabilities instead (not what emocam does; for comparison). With --temp T
each member's probabilities are raised to 1/T and renormalised first (not what emocam does;
T < 1 sharpens them, T > 1 flattens them; for comparison). The figure
to report is the one `emocam-train eval --ensemble LIST` then measures; this only chooses
the weights.

Views and time: a member's PREDICTIONS.csv is taken as its face + mirror predictions when
--one gives its one-view predictions too (`eval --tta 0 --out DIR`); it may then also enter
with one view (its list line's `tta=none`). --ms gives a member's milliseconds per view
(`emocam-bench --ensemble W`), and --budget keeps only line-ups whose views cost at most
that, plus --overhead for the whole face. --group A,B requires at least one of A and B (say,
one network of each architecture; repeat it for each).
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


def temper(p, temp):
    q = np.power(np.clip(p, 1e-9, 1), 1 / temp)
    return q / q.sum(1, keepdims=True)


def main(argv):
    grid = [0, 0.5, 1, 2, 3]
    need_all = False
    geometric = False
    temp = 1.0
    members = []
    one, ms, groups = {}, {}, []
    budget, overhead = None, 0.0
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
        elif a == "--temp":
            try:
                temp = float(next(args))
            except (StopIteration, ValueError):
                fail("--temp needs a number")
            if not temp > 0:
                fail(f"--temp {temp:g}: must be above 0")
        elif a in ("--one", "--ms"):
            v = next(args, "")
            if "=" not in v:
                fail(f"{a} needs NAME=VALUE")
            name, val = v.split("=", 1)
            if a == "--one":
                one[name] = val
            else:
                try:
                    ms[name] = float(val)
                except ValueError:
                    fail(f"--ms {v}: not a number of milliseconds")
        elif a in ("--budget", "--overhead"):
            try:
                val = float(next(args))
            except (StopIteration, ValueError):
                fail(f"{a} needs milliseconds")
            if a == "--budget":
                budget = val
            else:
                overhead = val
        elif a == "--group":
            groups.append(next(args, "").split(","))
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
    names = [n for n, _ in members]
    for n in list(one) + list(ms) + [g for grp in groups for g in grp]:
        if n not in names:
            fail(f"{n}: not a member (give it as NAME=PREDICTIONS.csv)")
    if budget is not None and any(n not in ms for n in names):
        fail("--budget needs --ms for every member")
    labels, probs = load_members(members + [(n, one[n]) for n in names if n in one])
    flip, single = probs[: len(names)], dict(zip([n for n in names if n in one], probs[len(names):]))
    if temp != 1:
        flip = [temper(p, temp) for p in flip]
        single = {n: temper(p, temp) for n, p in single.items()}
    transform = (lambda p: np.log(np.clip(p, 1e-6, 1))) if geometric else (lambda p: p)
    for n, p in zip(names, flip):
        acc, f1, rec = scores(labels, p.argmax(1))
        print(f"member {n}: accuracy {100 * acc:.2f} %, macro F1 {f1:.3f}, disgust recall {100 * rec[1]:.1f} %"
              + (f"; one view {100 * scores(labels, single[n].argmax(1))[0]:.2f} %" if n in single else ""))
    # each member's choices: (weight, views, term); views 2 is the PREDICTIONS.csv given
    choices = []
    for n, p in zip(names, flip):
        c = [(0, 0, None)]
        for w in grid:
            if w > 0:
                c.append((w, 2, transform(p)))
                if n in single:
                    c.append((w, 1, transform(single[n])))
        choices.append(c)
    results = []
    for combo in itertools.product(*choices):
        ws = [w for w, _, _ in combo]
        if sum(ws) == 0 or (need_all and min(ws) == 0):
            continue
        if any(not any(ws[names.index(g)] > 0 for g in grp) for grp in groups):
            continue
        cost = overhead + sum(v * ms.get(n, 0) for n, (_, v, _) in zip(names, combo))
        if budget is not None and cost > budget:
            continue
        mix = sum(w * t for w, _, t in combo if w > 0)
        acc, f1, rec = scores(labels, mix.argmax(1))
        results.append((acc, f1, rec[1], cost, combo))
    results.sort(key=lambda r: (-r[0], -r[1], r[3]))
    rule = ("geometric" if geometric else "arithmetic") + (f", temperature {temp:g}" if temp != 1 else "")
    print(f"best of {len(results)} weightings, {rule} mean ({', '.join(names)}):")
    for acc, f1, dis, cost, combo in results[:10]:
        w = " ".join(f"{w:g}" + ("" if not one or not w else "/1" if v == 1 else "/2") for w, v, _ in combo)
        ms_txt = f", {cost:.2f} ms" if ms else ""
        print(f"  {w:<20} accuracy {100 * acc:.2f} %, macro F1 {f1:.3f}, disgust recall {100 * dis:.1f} %{ms_txt}")
    if one:
        print("(WEIGHT/VIEWS: /1 one view, the list line's tta=none; /2 face + mirror)")


if __name__ == "__main__":
    main(sys.argv[1:])
