"""Run ../shared/bench/torch_baseline.py with another seed than its fixed 0, to measure how
much PyTorch's own result moves from seed to seed (the script itself is left as it is).

    /usr/bin/python3 scripts/torch_seed.py SEED ../shared/bench/torch_baseline.py fer.npz simple_cnn_v1 15 2

torch.manual_seed(0) and np.random.seed(0) inside the script become seeds SEED and SEED;
everything else runs unchanged. SEED 0 is the script's own run."""
import runpy
import sys

import numpy as np
import torch

if len(sys.argv) < 3 or not sys.argv[1].isdigit():
    sys.exit("usage: torch_seed.py SEED torch_baseline.py ARGS...")
seed = int(sys.argv[1])
torch_seed, np_seed = torch.manual_seed, np.random.seed
torch.manual_seed = lambda _s: torch_seed(seed)
np.random.seed = lambda _s: np_seed(seed)
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
