#!/usr/bin/python3
"""make_refs.py: PyTorch's answers for emocam's layers, networks, loss and optimizers.

    /usr/bin/python3 tests/ref/make_refs.py [--only CASE,CASE] [OUTDIR]   (default: this folder)

writes one small file per case, <case>.tref, in emocam's tensor container (model/tfile.h, kind
"TREF"), read by tests/test_torch_ref.c, which needs no torch at run time. Everything here is
computed in float64 from float32 inputs; results are stored as float32. It takes about two
minutes on two cores (mostly steer_clear on the four architectures), and the output is the
same from run to run on one machine.

Each network case's input is nudged away from the ReLU / max-pool / CBAM-max kinks first (see
steer_clear): every discrete choice of the backward pass has a margin of at least KINK_MARGIN
(1e-4) of the largest |value| at its site, so float32 rounding in the engine cannot flip one.

The first meta line says what a file holds: "# emocam-ref type=net|xent|optim key=value ...".
For type=net and type=optim the whole meta is also the architecture text (that line is a comment).

Parameters are not stored. Both sides derive them from a hash of (stream, element index), see
refinit_* below and tests/refinit.c (the two must stay identical): the stream of a network's
tensor is its index in emocam's Net.tensors order (parameters and buffers interleaved),
u = hash(stream, i) mapped to [-1, 1) exactly (24-bit), and by the name's last part:
    w             u / sqrt(fan_in)      (fan_in = count / dims[0])
    b, beta       0.2 u
    gamma         1 + 0.25 u            (positive)
    running_mean  0.2 u
    running_var   1 + 0.5 u             (positive)
Optimizer cases draw the gradient of tensor t at step s (1-based) as 0.5 u with stream
65536 s + t.

type=net, one batch, dropout off, batchnorm in training mode:
    x (N,C,H,W), dy (upstream gradient), y (training-mode output), dx,
    grad.<name>         the whole gradient of a parameter of at most 4096 elements, else
    gsample.<name>      elements 0, s, 2s, ... (< count), where s is the smallest integer
                        >= ceil(count / 1024) with gcd(s, 210) == 1 (so that the samples walk
                        across kernel taps and channels instead of repeating one position)
    gsum.<name>         [sum of the gradient, sum of its absolute values] (float64 sums)
    gscale.<name>       only for a bias whose gradient is zero in exact arithmetic (a conv or
                        linear followed by batchnorm in training mode): S, the largest sum over
                        batch and positions of |dLoss/dOutput| of one channel, i.e. the size of
                        the terms that cancel. The test measures this gradient against S
                        (both sides hold only rounding noise).
    buf.<name>          every running statistic after the training forward
    y_eval              the eval-mode output after that update
type=xent: logits (N,K), labels (N), [cw (K)], loss (1), probs (N,K), dlogits (N,K);
    eps= on the first line; torch.nn.functional.cross_entropy(weight=cw, label_smoothing=eps).
    A case with targets (N,K) (one distribution per row) has no labels and no eps:
    cross_entropy(logits, targets, weight=cw), knowledge distillation's soft targets.
type=optim: opt=sgd|adam|adamw lr= momentum= nesterov= beta1= beta2= eps= wd= decay_all=
    steps= on the first line; d<s>.<name> = parameter after step s minus its initial value,
    for torch.optim.SGD / Adam / AdamW. decay_all=0 puts weight decay on conv/linear weights
    only (a second parameter group).
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import emonet  # noqa: E402

FULL_MAX = 4096      # gradients up to this many elements are stored whole
SAMPLES = 1024       # about this many samples of a larger one


# ---- the deterministic initialisation (mirrored by tests/refinit.c)

def refinit_hash(stream, idx):
    """32-bit hash of (stream, element index); idx is a numpy integer array."""
    m = np.uint64(0xFFFFFFFF)
    h = (np.uint64(stream) * np.uint64(0x9E3779B1) + idx.astype(np.uint64) * np.uint64(0x85EBCA77)
         + np.uint64(0x165667B1)) & m
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x7FEB352D)) & m
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(0x846CA68B)) & m
    h ^= h >> np.uint64(16)
    return h


def refinit_uniform(stream, count):
    """count values in [-1, 1), each exactly a float32: (hash >> 8) * 2^-23 - 1."""
    h = refinit_hash(stream, np.arange(count, dtype=np.uint64))
    return (h >> np.uint64(8)).astype(np.float64) * (2.0 / 16777216.0) - 1.0


def refinit_tensor(name, dims, stream):
    count = math.prod(dims)
    u = refinit_uniform(stream, count)
    kind = name.rsplit(".", 1)[1]
    if kind == "w":
        v = u * (1.0 / math.sqrt(count // dims[0]))
    elif kind in ("b", "beta", "running_mean"):
        v = 0.2 * u
    elif kind == "gamma":
        v = 1.0 + 0.25 * u
    elif kind == "running_var":
        v = 1.0 + 0.5 * u
    else:
        raise ValueError(f"refinit: no rule for tensor {name}")
    return v.astype(np.float32).reshape(dims)


def refinit_net(net):
    """Set every parameter and buffer of an emonet.EmoNet the way refinit_net() does in C."""
    state = {}
    for t, info in enumerate(net.tensor_infos()):
        dims = tuple(getattr(info.module, info.attr).shape)
        state[info.name] = refinit_tensor(info.name, dims, t)
    net.load_emocam(state)
    return state


def sample_stride(count):
    s = -(-count // SAMPLES)
    while math.gcd(s, 210) != 1:
        s += 1
    return s


# ---- cases

LAYER_CASES = [
    # (case, n, architecture text without its comment line)
    ("conv_basic", 3, "input c=3 h=7 w=6\nconv out=4 k=3\n"),
    ("conv_stride2_pad1", 3, "input c=3 h=9 w=8\nconv out=5 k=3 stride=2 pad=1\n"),
    ("conv_k5_stride3_pad2", 2, "input c=2 h=11 w=10\nconv out=3 k=5 stride=3 pad=2\n"),
    ("conv_1x1_nobias", 3, "input c=5 h=4 w=5\nconv out=6 k=1 bias=0\n"),
    ("conv_groups2", 3, "input c=4 h=6 w=6\nconv out=6 k=3 pad=1 groups=2\n"),
    ("conv_depthwise_nobias", 3,
     "input c=4 h=7 w=7\nconv out=4 k=3 stride=2 pad=1 groups=4 bias=0\n"),
    ("conv_depthwise_mult2", 2, "input c=3 h=6 w=5\nconv out=6 k=3 pad=1 groups=3\n"),
    ("bn2d", 3, "input c=3 h=4 w=5\nbn\n"),
    ("bn2d_eps_momentum", 2, "input c=4 h=3 w=3\nbn eps=0.001 momentum=0.3\n"),
    ("bn1d", 5, "input c=6 h=1 w=1\nbn\n"),
    ("bn1d_after_linear", 4, "input c=3 h=2 w=2\nflatten\nlinear out=5\nbn momentum=0.2\n"),
    ("relu", 3, "input c=2 h=5 w=5\nrelu\n"),
    ("maxpool_k2", 3, "input c=2 h=6 w=7\nmaxpool k=2\n"),
    ("maxpool_k3_stride2_pad1", 3, "input c=2 h=7 w=8\nmaxpool k=3 stride=2 pad=1\n"),
    ("maxpool_k3_stride1", 2, "input c=3 h=5 w=6\nmaxpool k=3 stride=1\n"),
    ("maxpool_k2_stride3_pad1", 2, "input c=2 h=8 w=7\nmaxpool k=2 stride=3 pad=1\n"),
    ("avgpool_k2", 3, "input c=2 h=6 w=7\navgpool k=2\n"),
    ("avgpool_k3_stride2", 3, "input c=3 h=7 w=8\navgpool k=3 stride=2\n"),
    ("avgpool_k2_stride1", 2, "input c=2 h=4 w=5\navgpool k=2 stride=1\n"),
    ("gap", 3, "input c=3 h=5 w=4\ngap\n"),
    ("flatten_linear", 3, "input c=2 h=3 w=3\nflatten\nlinear out=5\n"),
    ("linear_nobias", 4, "input c=6 h=1 w=1\nlinear out=4 bias=0\n"),
    ("dropout", 3, "input c=3 h=4 w=4\ndropout p=0.5\n"),
    ("dropout2d", 3, "input c=3 h=4 w=4\ndropout2d p=0.3\n"),
    ("residual_identity", 3,
     "input c=3 h=6 w=6\nresidual\n  conv out=3 k=3 pad=1\n  bn\n  relu\n"
     "  conv out=3 k=3 pad=1\nend\n"),
    ("residual_projection", 3,
     "input c=3 h=7 w=7\nresidual\n  conv out=4 k=3 stride=2 pad=1 bias=0\n  bn\n"
     "shortcut\n  conv out=4 k=1 stride=2 bias=0\n  bn\nend\nrelu\n"),
    ("residual_nested", 2,
     "input c=2 h=5 w=5\nconv out=3 k=3 pad=1\nresidual\n  residual\n    conv out=3 k=3 pad=1\n"
     "    bn\n  end\n  relu\nshortcut\n  bn\nend\n"),
    ("cbam_r4_k3", 3, "input c=8 h=5 w=6\ncbam r=4 k=3\n"),
    ("cbam_default", 2, "input c=16 h=7 w=7\ncbam\n"),
    ("cbam_hidden1", 2, "input c=4 h=4 w=5\ncbam r=16 k=5\n"),
    ("mixed_small", 4,
     "input c=2 h=9 w=9\nconv out=4 k=3 pad=1\nbn\nrelu\nmaxpool k=2\ncbam r=2 k=3\n"
     "conv out=6 k=3 stride=2 pad=1 bias=0\nbn\nrelu\ngap\nlinear out=8\nbn\nrelu\n"
     "dropout p=0.5\nlinear out=3\n"),
]
ARCHS = ["simple_cnn_v1", "deep_cnn_v1", "cbam_cnn", "resnet"]
ARCH_BATCH = 4

XENT_CASES = [
    # (case, n, k, eps, class weights?, logit scale)
    ("xent_plain", 6, 7, 0.0, False, 2.0),
    ("xent_smooth", 6, 7, 0.1, False, 2.0),
    ("xent_weights", 6, 7, 0.0, True, 2.0),
    ("xent_weights_smooth", 8, 7, 0.2, True, 2.0),
    ("xent_large_logits", 5, 7, 0.1, True, 40.0),
]

SOFT_CASES = [
    # (case, n, k, class weights?, logit scale)
    ("xent_soft", 6, 7, False, 2.0),
    ("xent_soft_weights", 8, 7, True, 2.0),
]

OPT_ARCH = ("input c=2 h=4 w=4\nconv out=3 k=3 pad=1\nbn\nrelu\nflatten\nlinear out=5\n"
            "relu\nlinear out=4 bias=0\n")
OPT_CASES = [
    ("optim_sgd", "opt=sgd lr=0.1 momentum=0 nesterov=0 wd=0"),
    ("optim_sgd_wd", "opt=sgd lr=0.1 momentum=0 nesterov=0 wd=0.01"),
    ("optim_sgd_momentum", "opt=sgd lr=0.1 momentum=0.9 nesterov=0 wd=0"),
    ("optim_sgd_nesterov_wd", "opt=sgd lr=0.1 momentum=0.9 nesterov=1 wd=0.01"),
    ("optim_sgd_nesterov_wd_weights", "opt=sgd lr=0.05 momentum=0.8 nesterov=1 wd=0.05 decay_all=0"),
    ("optim_adam", "opt=adam lr=0.01 wd=0"),
    ("optim_adam_l2", "opt=adam lr=0.01 beta1=0.8 beta2=0.99 eps=1e-6 wd=0.01"),
    ("optim_adam_l2_weights", "opt=adam lr=0.01 wd=0.05 decay_all=0"),
    ("optim_adamw", "opt=adamw lr=0.01 wd=0.05"),
    ("optim_adamw_weights", "opt=adamw lr=0.02 beta1=0.85 wd=0.1 decay_all=0"),
]
OPT_DEFAULTS = {"lr": "0.001", "momentum": "0.9", "nesterov": "0", "beta1": "0.9",
                "beta2": "0.999", "eps": "1e-8", "wd": "0", "decay_all": "1", "steps": "3"}


# ---- inputs away from the kinks
#
# The backward pass depends on discrete choices: which ReLU inputs are positive, which element
# wins each max-pool window, CBAM's channel maxima and the ReLU inside its MLP. Where the float64
# reference sits within float32 rounding of such a choice, the engine may choose the other way
# and its gradients differ by far more than rounding (seen: one ReLU input of 2e-6 in the
# resnet case moved dx by 1e-3). So every network case's input x is nudged until each choice has
# a margin of at least KINK_MARGIN times the largest |value| at that site: ReLU inputs away from
# 0, the best of each max set ahead of the runner-up (exact ties, such as windows of ReLU zeros,
# are broken the same way by both sides and are left alone).

KINK_MARGIN = 1e-4


def _kink_sites(net):
    """Hooks that collect, per forward, (label, q, scale, is_gap): q holds a site's decision
    values (ReLU inputs, or best-minus-runner-up gaps of max sets), in the autograd graph."""
    sites, hooks = [], []

    def gap(v, dim):
        t = v.topk(2, dim=dim).values
        t0, t1 = t.select(dim, 0), t.select(dim, 1)
        g = t0 - t1
        # exact ties (and lone candidates of padded windows) are decided identically
        return torch.where((t0 == t1) | torch.isinf(t1), torch.full_like(g, math.inf), g)

    def relu_hook(m, inp, out):
        sites.append(("relu", inp[0], inp[0].detach().abs().max().item(), False))

    def pool_hook(m, inp, out):
        z = inp[0]
        n, c, h, w = z.shape
        k, st, p = m.kernel_size, m.stride, m.padding
        if k * k < 2:
            return
        zp = F.pad(z, (p, p, p, p), value=-math.inf) if p else z
        cols = F.unfold(zp.reshape(n * c, 1, h + 2 * p, w + 2 * p), k, stride=st)
        sites.append(("maxpool", gap(cols, 1), z.detach().abs().max().item(), True))

    def cbam_hook(m, inp, out):
        sv = m.saved
        sites.append(("cbam.mlp relu", sv["hidden"], sv["hidden"].detach().abs().max().item(), False))
        if sv["plane"].shape[2] > 1:
            sites.append(("cbam plane max", gap(sv["plane"], 2),
                          sv["plane"].detach().abs().max().item(), True))
        if sv["x1"].shape[1] > 1:
            sites.append(("cbam channel max", gap(sv["x1"], 1),
                          sv["x1"].detach().abs().max().item(), True))

    for m in net.modules():
        if isinstance(m, torch.nn.ReLU):
            hooks.append(m.register_forward_hook(relu_hook))
        elif isinstance(m, torch.nn.MaxPool2d):
            hooks.append(m.register_forward_hook(pool_hook))
        elif isinstance(m, emonet.Cbam):
            m.keep = True
            hooks.append(m.register_forward_hook(cbam_hook))
    return sites, hooks


def steer_clear(net, x, max_rounds=30):
    """x (float32) nudged so that every kink site has its margin; returns (x, smallest margin
    as a fraction of its site's scale, rounds). Changes the net's running statistics."""
    sites, hooks = _kink_sites(net)
    net.set_mode(train=True, dropout=False)
    worst = math.inf
    for rounds in range(max_rounds):
        sites.clear()
        xt = tensor_of(x).requires_grad_(True)
        net(xt)
        near, worst = [], math.inf
        for label, q, scale, is_gap in sites:
            if scale == 0:
                continue
            rel = (q.detach().abs() / scale).reshape(-1)
            worst = min(worst, rel.min().item())
            for i in torch.nonzero(rel < KINK_MARGIN).reshape(-1).tolist():
                near.append((q, i, scale, is_gap))
        if not near:
            break
        step = torch.zeros_like(xt)
        for q, i, scale, is_gap in near:
            v = q.reshape(-1)[i]
            g, = torch.autograd.grad(v, xt, retain_graph=True)
            nn2 = (g * g).sum().item()
            if nn2 == 0:
                continue
            target = 3 * KINK_MARGIN * scale * (1 if is_gap or v.item() >= 0 else -1)
            step += (target - v.item()) * g / nn2
        x = (x.astype(np.float64) + step.numpy()).astype(np.float32)
    else:
        raise RuntimeError(f"steer_clear: {len(near)} decisions still within the margin")
    for h in hooks:
        h.remove()
    for m in net.modules():
        if isinstance(m, emonet.Cbam):
            m.keep, m.saved = False, None
    return x, worst, rounds


def tensor_of(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float32).astype(np.float64))


def make_net_case(name, text, n, seed):
    meta = f"# emocam-ref type=net case={name}\n" + text
    net = emonet.EmoNet(meta, name).double()
    refinit_net(net)
    rng = np.random.RandomState(seed)
    c, h, w = net.in_shape
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    oc, oh, ow = net.out_shape
    yshape = (n, oc) if net.flat_out else (n, oc, oh, ow)
    dy = rng.standard_normal(yshape).astype(np.float32)
    x, margin, rounds = steer_clear(net, x)
    refinit_net(net)   # steering updated the running statistics

    # For every conv/linear bias: S = max over channels of the sum of |dLoss/dOutput| over
    # batch and positions, the size of the terms that its gradient adds up.
    scale, hooks = {}, []
    for info in net.tensor_infos():
        if info.attr == "bias" and isinstance(info.module, (torch.nn.Conv2d, torch.nn.Linear)):
            def hook(mod, inp, outp, name=info.name):
                outp.register_hook(lambda g: scale.__setitem__(
                    name, g.abs().sum([d for d in range(g.dim()) if d != 1]).max().item()))
            hooks.append(info.module.register_forward_hook(hook))

    net.set_mode(train=True, dropout=False)
    xt = tensor_of(x).requires_grad_(True)
    y = net(xt)
    y.backward(tensor_of(dy))
    for h in hooks:
        h.remove()
    out = [("x", x), ("dy", dy), ("y", y.detach().numpy()), ("dx", xt.grad.numpy())]
    for info in net.tensor_infos():
        t = getattr(info.module, info.attr)
        if info.is_buffer:
            out.append(("buf." + info.name, t.detach().numpy()))
            continue
        g = t.grad.detach().numpy()
        if info.name in scale and np.abs(g).max() <= 1e-9 * scale[info.name]:
            out.append(("gscale." + info.name, np.array([scale[info.name]])))
        if g.size <= FULL_MAX:
            out.append(("grad." + info.name, g))
        else:
            flat = g.reshape(-1)
            out.append(("gsample." + info.name, flat[::sample_stride(flat.size)]))
            out.append(("gsum." + info.name, np.array([flat.sum(), np.abs(flat).sum()])))
    net.set_mode(train=False)
    with torch.no_grad():
        out.append(("y_eval", net(tensor_of(x)).numpy()))
    return meta, out, f"kink margin {margin:.1e} after {rounds} nudges"


def make_xent_case(name, n, k, eps, weighted, scale, seed):
    rng = np.random.RandomState(seed)
    z = (scale * rng.standard_normal((n, k))).astype(np.float32)
    labels = rng.randint(0, k, n)
    labels[: min(n, k)] = rng.permutation(k)[: min(n, k)]   # many different classes
    out = [("logits", z), ("labels", labels.astype(np.float32))]
    cw = None
    if weighted:
        cw = rng.uniform(0.2, 3.0, k).astype(np.float32)
        out.append(("cw", cw))
    zt = tensor_of(z).requires_grad_(True)
    loss = F.cross_entropy(zt, torch.from_numpy(labels), weight=None if cw is None else tensor_of(cw),
                           label_smoothing=eps)
    loss.backward()
    out += [("loss", np.array([loss.item()])), ("probs", torch.softmax(zt, 1).detach().numpy()),
            ("dlogits", zt.grad.numpy())]
    return f"# emocam-ref type=xent case={name} eps={eps!r}\n", out, ""


def make_soft_case(name, n, k, weighted, scale, seed):
    rng = np.random.RandomState(seed)
    z = (scale * rng.standard_normal((n, k))).astype(np.float32)
    q = rng.uniform(0, 1, (n, k)) ** 2      # uneven rows, as a teacher's are
    q = (q / q.sum(1, keepdims=True)).astype(np.float32)
    out = [("logits", z), ("targets", q)]
    cw = None
    if weighted:
        cw = rng.uniform(0.2, 3.0, k).astype(np.float32)
        out.append(("cw", cw))
    zt = tensor_of(z).requires_grad_(True)
    loss = F.cross_entropy(zt, tensor_of(q), weight=None if cw is None else tensor_of(cw))
    loss.backward()
    out += [("loss", np.array([loss.item()])), ("probs", torch.softmax(zt, 1).detach().numpy()),
            ("dlogits", zt.grad.numpy())]
    return f"# emocam-ref type=xent case={name}\n", out, ""


def make_optim_case(name, spec):
    cfg = dict(OPT_DEFAULTS)
    for kv in spec.split():
        k, v = kv.split("=", 1)
        cfg[k] = v
    line = "# emocam-ref type=optim case=" + name + " " + " ".join(
        f"{k}={cfg[k]}" for k in ["opt", "lr", "momentum", "nesterov", "beta1", "beta2", "eps",
                                  "wd", "decay_all", "steps"])
    meta = line + "\n" + OPT_ARCH
    net = emonet.EmoNet(meta, name).double()
    refinit_net(net)
    infos = net.tensor_infos()
    params = [(t, info) for t, info in enumerate(infos) if not info.is_buffer]
    p0 = {info.name: getattr(info.module, info.attr).detach().clone() for _, info in params}
    lr, wd = float(cfg["lr"]), float(cfg["wd"])
    if cfg["decay_all"] == "1":
        groups = [{"params": [getattr(i.module, i.attr) for _, i in params], "weight_decay": wd}]
    else:
        groups = [{"params": [getattr(i.module, i.attr) for _, i in params if i.decay],
                   "weight_decay": wd},
                  {"params": [getattr(i.module, i.attr) for _, i in params if not i.decay],
                   "weight_decay": 0.0}]
    betas = (float(cfg["beta1"]), float(cfg["beta2"]))
    if cfg["opt"] == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=float(cfg["momentum"]),
                              nesterov=cfg["nesterov"] == "1")
    elif cfg["opt"] == "adam":
        opt = torch.optim.Adam(groups, lr=lr, betas=betas, eps=float(cfg["eps"]))
    else:
        opt = torch.optim.AdamW(groups, lr=lr, betas=betas, eps=float(cfg["eps"]))
    out = []
    for s in range(1, int(cfg["steps"]) + 1):
        for t, info in params:
            p = getattr(info.module, info.attr)
            p.grad = tensor_of(0.5 * refinit_uniform(65536 * s + t, p.numel())).reshape(p.shape)
        opt.step()
        for t, info in params:
            p = getattr(info.module, info.attr)
            out.append((f"d{s}.{info.name}", (p.detach() - p0[info.name]).numpy()))
    return meta, out, ""


def main():
    args = sys.argv[1:]
    only = None
    if args[:1] == ["--only"] and len(args) >= 2:
        only, args = set(args[1].split(",")), args[2:]
    outdir = args[0] if args else HERE
    torch.set_num_threads(1)
    jobs = []
    for i, (name, n, text) in enumerate(LAYER_CASES):
        jobs.append((name, lambda name=name, n=n, text=text, i=i:
                     make_net_case(name, text, n, 1000 + i)))
    for i, a in enumerate(ARCHS):
        with open(os.path.join(ROOT, "assets", "models", a + ".arch"), encoding="utf-8") as fp:
            text = fp.read()
        jobs.append(("arch_" + a, lambda a=a, text=text, i=i:
                     make_net_case("arch_" + a, text, ARCH_BATCH, 2000 + i)))
    for i, (name, n, k, eps, weighted, scale) in enumerate(XENT_CASES):
        jobs.append((name, lambda a=(name, n, k, eps, weighted, scale, 3000 + i): make_xent_case(*a)))
    for i, (name, n, k, weighted, scale) in enumerate(SOFT_CASES):
        jobs.append((name, lambda a=(name, n, k, weighted, scale, 3100 + i): make_soft_case(*a)))
    for name, spec in OPT_CASES:
        jobs.append((name, lambda name=name, spec=spec: make_optim_case(name, spec)))
    total = 0
    if only:
        unknown = only - {name for name, _ in jobs}
        if unknown:
            sys.exit("make_refs.py: --only: no case " + ", ".join(sorted(unknown)))
        jobs = [(name, job) for name, job in jobs if name in only]
    for name, job in jobs:
        meta, tensors, note = job()
        path = os.path.join(outdir, name + ".tref")
        emonet.write_tfile(path, "TREF", meta, tensors)
        size = os.path.getsize(path)
        total += size
        print(f"{name}.tref: {len(tensors)} tensors, {size} bytes {note}", flush=True)
    print(f"{len(jobs)} files, {total} bytes")


if __name__ == "__main__":
    main()
