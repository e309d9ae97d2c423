#!/usr/bin/python3
"""torch_bench.py: PyTorch's figures for one emocam architecture, the other half of emocam-bench.

    /usr/bin/python3 scripts/torch_bench.py ARCH BATCH THREADS SECONDS [--bf16]

Builds the network of ARCH (an architecture text file) with emonet.py and measures, like
model/bench.c does for the engine:
  - training: random inputs (uniform 0..1) and labels held in memory, torch.set_num_threads(THREADS),
    steps of forward, F.cross_entropy, zero_grad, backward and torch.optim.Adam(lr=1e-3) with
    dropout and batchnorm in training mode; 3 warm-up steps, then at least 5 steps and SECONDS
    seconds; images per second;
  - inference: one 1xCxHxW input through the eval-mode network under torch.no_grad() on one
    thread, 20 warm-up runs, the median of 300 (milliseconds).
With --bf16, both run under torch.autocast("cpu", dtype=torch.bfloat16) (oneDNN's AMX kernels on
CPUs that have them), the counterpart of emocam-bench --bf16.
Prints exactly one line, parsed by model/bench.c:
    {"train_img_s": X, "infer_ms": Y}
"""
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emonet  # noqa: E402


def main(argv):
    bf16 = "--bf16" in argv
    argv = [a for a in argv if a != "--bf16"]
    if len(argv) != 5:
        sys.stderr.write(__doc__)
        return 2
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    path, batch, threads, seconds = argv[1], int(argv[2]), int(argv[3]), float(argv[4])
    if batch < 1 or threads < 1 or seconds < 0:
        sys.stderr.write("torch_bench.py: BATCH and THREADS must be positive, SECONDS >= 0\n")
        return 2
    torch.manual_seed(0)
    net = emonet.EmoNet.from_file(path)
    if not net.flat_out:
        sys.stderr.write(f"{path}: the network does not end in class scores\n")
        return 1
    c, h, w = net.in_shape
    k = net.out_shape[0]
    x = torch.rand(batch, c, h, w)
    y = torch.randint(0, k, (batch,))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    torch.set_num_threads(threads)
    net.set_mode(train=True, dropout=True)
    steps, t0 = 0, 0.0
    for it in range(1 << 30):   # 3 warm-up steps, then at least 5 steps and `seconds`
        if it == 3:
            t0 = time.perf_counter()
        with autocast:
            loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it >= 3:
            steps += 1
            if steps >= 5 and time.perf_counter() - t0 >= seconds:
                break
    train_img_s = steps * batch / (time.perf_counter() - t0)

    torch.set_num_threads(1)
    net.set_mode(train=False)
    one = x[:1].clone()
    times = []
    with torch.no_grad(), autocast:
        for _ in range(20):
            net(one)
        for _ in range(300):
            t = time.perf_counter()
            net(one)
            times.append((time.perf_counter() - t) * 1e3)
    print(json.dumps({"train_img_s": round(train_img_s, 1),
                      "infer_ms": round(statistics.median(times), 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
