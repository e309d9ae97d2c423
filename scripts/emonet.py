"""emonet.py: emocam's architecture text (see model/arch.c) as a PyTorch module.

The module mirrors the C engine layer for layer, and its parameters and running statistics are
addressed by emocam's tensor names, in emocam's order (Net.tensors: layer order; per layer, the
order in which the C code registers them with builder_tensor):

    "0.conv.w", "0.conv.b", "1.bn.gamma", "1.bn.beta", "1.bn.running_mean",
    "1.bn.running_var", "4.res.main.0.conv.w", "4.res.short.1.bn.gamma", "7.cbam.fc1.w",
    "7.cbam.fc1.b", "7.cbam.fc2.w", "7.cbam.fc2.b", "7.cbam.sp.w", "9.linear.w", ...

Activations are NCHW throughout; a flat activation is (N, C, 1, 1), exactly as in the engine.
The module returns (N, K) when the network ends flat, NCHW otherwise.

    net = EmoNet.from_file("assets/models/resnet.arch")
    net.set_mode(train=True, dropout=False)    # batch statistics, dropout off (reference runs)
    sd = net.emocam_state()                    # OrderedDict name -> tensor, emocam order
    net.load_emocam(read_tfile("w.bin")[2])    # or any {name: array} of the same shapes

Only the standard library, numpy and torch are needed. Run with Debian's /usr/bin/python3.
"""
import collections
import math
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["EmoNet", "parse_arch", "read_tfile", "write_tfile", "TensorInfo"]


class ArchError(ValueError):
    pass


# What each emocam tensor is: name, the module attribute that holds it, and its flags.
TensorInfo = collections.namedtuple("TensorInfo", "name module attr is_buffer decay")


# ---- layers (each takes and returns NCHW; flat activations are (N, C, 1, 1))

class Conv(nn.Module):
    def __init__(self, in_c, out_c, k, stride, pad, groups, bias):
        super().__init__()
        self.conv = nn.Conv2d(in_c, out_c, k, stride=stride, padding=pad, groups=groups,
                              bias=bool(bias))

    def forward(self, x):
        return self.conv(x)

    def tensors(self):
        t = [("w", self.conv, "weight", False, True)]
        if self.conv.bias is not None:
            t.append(("b", self.conv, "bias", False, False))
        return t


class BatchNorm(nn.Module):
    """BatchNorm2d on images; on flat (C, 1, 1) activations, BatchNorm1d on (N, C)."""

    def __init__(self, c, flat, eps, momentum):
        super().__init__()
        self.flat = flat
        cls = nn.BatchNorm1d if flat else nn.BatchNorm2d
        self.bn = cls(c, eps=eps, momentum=momentum)

    def forward(self, x):
        if self.flat:
            return self.bn(x.reshape(x.shape[0], -1)).reshape(x.shape)
        return self.bn(x)

    def tensors(self):
        return [("gamma", self.bn, "weight", False, False),
                ("beta", self.bn, "bias", False, False),
                ("running_mean", self.bn, "running_mean", True, False),
                ("running_var", self.bn, "running_var", True, False)]


class Linear(nn.Module):
    def __init__(self, in_c, out_c, bias):
        super().__init__()
        self.fc = nn.Linear(in_c, out_c, bias=bool(bias))

    def forward(self, x):
        n = x.shape[0]
        return self.fc(x.reshape(n, -1)).reshape(n, -1, 1, 1)

    def tensors(self):
        t = [("w", self.fc, "weight", False, True)]
        if self.fc.bias is not None:
            t.append(("b", self.fc, "bias", False, False))
        return t


class Flatten(nn.Module):
    def forward(self, x):
        return x.reshape(x.shape[0], -1, 1, 1)


class Residual(nn.Module):
    """y = main(x) + shortcut(x); the shortcut is the identity when it has no layers."""

    def __init__(self, main, shortcut):
        super().__init__()
        self.main = main
        self.shortcut = shortcut

    def forward(self, x):
        s = self.shortcut(x) if len(self.shortcut) else x
        return self.main(x) + s


class Cbam(nn.Module):
    """Channel attention a = sigmoid(mlp(avg) + mlp(max)), x1 = x * a; spatial attention
    s = sigmoid(conv_k([mean_c(x1), max_c(x1)])), y = x1 * s (model/cbam.c)."""

    def __init__(self, c, r, k):
        super().__init__()
        hidden = max(c // r, 1)
        self.fc1 = nn.Linear(c, hidden)
        self.fc2 = nn.Linear(hidden, c)
        self.sp = nn.Conv2d(2, 1, k, padding=k // 2, bias=False)
        # keep=True saves the tensors behind each discrete choice of the last forward in
        # self.saved (reference tooling: tests/ref/make_refs.py)
        self.keep, self.saved = False, None

    def forward(self, x):
        n, c = x.shape[:2]
        flat = x.reshape(n, c, -1)
        # max(dim) sends the gradient to one winner (the engine's), amax would share it
        h_avg, h_max = self.fc1(flat.mean(2)), self.fc1(flat.max(2)[0])
        a = torch.sigmoid(self.fc2(F.relu(h_avg)) + self.fc2(F.relu(h_max)))
        x1 = x * a.reshape(n, c, 1, 1)
        smap = torch.cat([x1.mean(1, keepdim=True), x1.max(1, keepdim=True)[0]], 1)
        if self.keep:
            self.saved = {"plane": flat, "hidden": torch.cat([h_avg, h_max]), "x1": x1}
        return x1 * torch.sigmoid(self.sp(smap))

    def tensors(self):
        return [("fc1.w", self.fc1, "weight", False, True), ("fc1.b", self.fc1, "bias", False, False),
                ("fc2.w", self.fc2, "weight", False, True), ("fc2.b", self.fc2, "bias", False, False),
                ("sp.w", self.sp, "weight", False, True)]


# ---- the architecture text

def _args(kind, toks, where, spec):
    """Strict key=value parsing: spec maps key -> (type, default or REQUIRED, lo, hi)."""
    vals = {}
    for t in toks:
        if "=" not in t or t.startswith("=") or t.endswith("="):
            raise ArchError(f"{where}: expected key=value, got '{t}'")
        k, v = t.split("=", 1)
        if k in vals:
            raise ArchError(f"{where}: duplicate key '{k}'")
        if k not in spec:
            raise ArchError(f"{where}: unknown key '{k}' for {kind}")
        typ, _, lo, hi = spec[k]
        try:
            x = typ(v)
        except ValueError:
            raise ArchError(f"{where}: bad value {k}={v}") from None
        if not lo <= x <= hi:
            raise ArchError(f"{where}: bad value {k}={v} (want {lo}..{hi})")
        vals[k] = x
    out = {}
    for k, (typ, default, _, _) in spec.items():
        if k in vals:
            out[k] = vals[k]
        elif default is REQUIRED:
            raise ArchError(f"{where}: missing {k}=")
        else:
            out[k] = vals.get(default, default) if isinstance(default, str) else default
    return out


REQUIRED = object()


def _layer(kind, toks, shape, where):
    """Build one layer for input shape (c, h, w): (module, output shape, tensor list)."""
    c, h, w = shape
    if kind == "conv":
        a = _args(kind, toks, where, {"out": (int, REQUIRED, 1, 65536), "k": (int, REQUIRED, 1, 63),
                                     "stride": (int, 1, 1, 63), "pad": (int, 0, 0, 62),
                                     "groups": (int, 1, 1, 65536), "bias": (int, 1, 0, 1)})
        k, s, p, g = a["k"], a["stride"], a["pad"], a["groups"]
        if c % g or a["out"] % g:
            raise ArchError(f"{where}: conv: groups={g} must divide in_c={c} and out={a['out']}")
        if h + 2 * p < k or w + 2 * p < k or p >= k:
            raise ArchError(f"{where}: conv: kernel {k} (pad {p}) does not fit {h}x{w}")
        m = Conv(c, a["out"], k, s, p, g, a["bias"])
        return m, (a["out"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
    if kind == "bn":
        a = _args(kind, toks, where, {"eps": (float, 1e-5, 1e-12, 1), "momentum": (float, 0.1, 0, 1)})
        return BatchNorm(c, h == 1 and w == 1, a["eps"], a["momentum"]), shape
    if kind == "relu":
        _args(kind, toks, where, {})
        return nn.ReLU(), shape
    if kind == "maxpool":
        a = _args(kind, toks, where, {"k": (int, REQUIRED, 1, 64), "stride": (int, "k", 1, 64),
                                     "pad": (int, 0, 0, 32)})
        k, s, p = a["k"], a["stride"], a["pad"]
        if 2 * p > k or h + 2 * p < k or w + 2 * p < k:
            raise ArchError(f"{where}: maxpool: window {k} (pad {p}) does not fit {h}x{w}")
        return nn.MaxPool2d(k, s, p), (c, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
    if kind == "avgpool":
        a = _args(kind, toks, where, {"k": (int, REQUIRED, 1, 64), "stride": (int, "k", 1, 64)})
        k, s = a["k"], a["stride"]
        if h < k or w < k:
            raise ArchError(f"{where}: avgpool: window {k} does not fit {h}x{w}")
        return nn.AvgPool2d(k, s), (c, (h - k) // s + 1, (w - k) // s + 1)
    if kind == "gap":
        _args(kind, toks, where, {})
        return nn.AdaptiveAvgPool2d(1), (c, 1, 1)
    if kind in ("dropout", "dropout2d"):
        a = _args(kind, toks, where, {"p": (float, 0.5, 0, 0.99)})
        return (nn.Dropout(a["p"]) if kind == "dropout" else nn.Dropout2d(a["p"])), shape
    if kind == "linear":
        a = _args(kind, toks, where, {"out": (int, REQUIRED, 1, 1 << 20), "bias": (int, 1, 0, 1)})
        if h != 1 or w != 1:
            raise ArchError(f"{where}: linear needs flat input, got {c}x{h}x{w}")
        return Linear(c, a["out"], a["bias"]), (a["out"], 1, 1)
    if kind == "flatten":
        _args(kind, toks, where, {})
        return Flatten(), (c * h * w, 1, 1)
    if kind == "cbam":
        a = _args(kind, toks, where, {"r": (int, 8, 1, 4096), "k": (int, 7, 1, 15)})
        if a["k"] % 2 == 0:
            raise ArchError(f"{where}: cbam: k={a['k']} must be odd")
        return Cbam(c, a["r"], a["k"]), shape
    raise ArchError(f"{where}: unknown layer kind '{kind}'")


def parse_arch(text, file="<arch>"):
    """Parse architecture text: (input shape, (mean, std) of the input line, nn.Sequential,
    output shape, [TensorInfo])."""
    infos = []
    in_shape = None
    # frame: [sequential, shape at its start, current shape, name prefix, block-state]
    stack = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        where = f"{file}:{lineno}"
        toks = raw.split("#", 1)[0].split()
        if not toks:
            continue
        kind, rest = toks[0], toks[1:]
        if in_shape is None:
            if kind != "input":
                raise ArchError(f"{where}: the first line must be 'input c=.. h=.. w=..'")
            a = _args(kind, rest, where, {"c": (int, REQUIRED, 1, 4096), "h": (int, REQUIRED, 1, 4096),
                                         "w": (int, REQUIRED, 1, 4096), "mean": (float, 0.0, -1e6, 1e6),
                                         "std": (float, 255.0, 1e-6, 1e6)})
            in_shape = (a["c"], a["h"], a["w"])
            in_norm = (a["mean"], a["std"])
            stack.append({"seq": nn.Sequential(), "shape": in_shape, "prefix": None})
            continue
        f = stack[-1]
        if kind == "input":
            raise ArchError(f"{where}: 'input' appears twice")
        if kind == "residual":
            _args(kind, rest, where, {})
            if len(stack) > 4:
                raise ArchError(f"{where}: blocks nested deeper than 4")
            name = _path(f, "res")
            stack.append({"seq": nn.Sequential(), "shape": f["shape"], "in": f["shape"],
                          "prefix": name, "branch": "main", "main": None, "line": where})
        elif kind == "shortcut":
            _args(kind, rest, where, {})
            if f["prefix"] is None or f["branch"] != "main":
                raise ArchError(f"{where}: 'shortcut' outside a residual block, or given twice")
            f["main"], f["main_shape"] = f["seq"], f["shape"]
            f["seq"], f["shape"], f["branch"] = nn.Sequential(), f["in"], "short"
        elif kind == "end":
            _args(kind, rest, where, {})
            if f["prefix"] is None:
                raise ArchError(f"{where}: 'end' without a block")
            if f["branch"] == "main":
                main, mshape, short, sshape = f["seq"], f["shape"], nn.Sequential(), f["in"]
            else:
                main, mshape, short, sshape = f["main"], f["main_shape"], f["seq"], f["shape"]
            if len(main) == 0:
                raise ArchError(f"{where}: residual block {f['prefix']} has no layers")
            if mshape != sshape:
                raise ArchError(f"{where}: residual block {f['prefix']}: main path gives {mshape} "
                                f"but the shortcut gives {sshape}")
            stack.pop()
            parent = stack[-1]
            parent["seq"].append(Residual(main, short))
            parent["shape"] = mshape
        else:
            name = _path(f, kind)
            m, shape = _layer(kind, rest, f["shape"], where)
            for suffix, mod, attr, is_buf, decay in (m.tensors() if hasattr(m, "tensors") else []):
                infos.append(TensorInfo(f"{name}.{suffix}", mod, attr, is_buf, decay))
            f["seq"].append(m)
            f["shape"] = shape
    if in_shape is None:
        raise ArchError(f"{file}: no 'input' line: empty architecture")
    if len(stack) > 1:
        raise ArchError(f"{stack[-1]['line']}: residual block is never closed with 'end'")
    if len(stack[0]["seq"]) == 0:
        raise ArchError(f"{file}: the architecture has no layers")
    return in_shape, in_norm, stack[0]["seq"], stack[0]["shape"], infos


def _path(f, kind):
    """The engine's layer name (arch.c layer_path): "3.conv", or "3.res.main.0.conv" inside."""
    i = len(f["seq"])
    if f["prefix"] is None:
        return f"{i}.{kind}"
    return f"{f['prefix']}.{f['branch']}.{i}.{kind}"


class EmoNet(nn.Module):
    def __init__(self, text, file="<arch>"):
        super().__init__()
        self.arch = text
        self.in_shape, (self.in_mean, self.in_std), self.body, self.out_shape, self._infos = \
            parse_arch(text, file)
        self.flat_out = self.out_shape[1] == 1 and self.out_shape[2] == 1

    def preprocess(self, pixels):
        """8-bit face crops (N, C, H, W) to the network's input, (p - mean) / std, as
        net_preprocess() does (forward() itself takes the preprocessed input)."""
        p = torch.as_tensor(np.asarray(pixels), dtype=torch.float32)
        return (p - self.in_mean) * (1.0 / self.in_std)

    @classmethod
    def from_file(cls, path):
        with open(path, encoding="utf-8") as fp:
            return cls(fp.read(), path)

    def forward(self, x):
        y = self.body(x)
        return y.reshape(y.shape[0], -1) if self.flat_out else y

    # ---- emocam names

    def tensor_infos(self):
        """[TensorInfo] in emocam's order (parameters and buffers interleaved, as Net.tensors)."""
        return list(self._infos)

    def emocam_tensor(self, name):
        """The live parameter or buffer called `name` in emocam."""
        for t in self._infos:
            if t.name == name:
                return getattr(t.module, t.attr)
        raise KeyError(name)

    def emocam_state(self):
        """OrderedDict emocam name -> tensor (the live objects), emocam's order."""
        return collections.OrderedDict((t.name, getattr(t.module, t.attr)) for t in self._infos)

    def emocam_params(self):
        """[(name, nn.Parameter, decay)] for the trainable tensors, emocam's order."""
        return [(t.name, getattr(t.module, t.attr), t.decay) for t in self._infos if not t.is_buffer]

    def load_emocam(self, state, strict=True):
        """Copy {emocam name: array or tensor} into the module (shapes must match)."""
        names = {t.name for t in self._infos}
        if strict:
            missing = [n for n in names if n not in state]
            extra = [n for n in state if n not in names]
            if missing or extra:
                raise KeyError(f"missing {missing[:5]}, unexpected {extra[:5]}")
        with torch.no_grad():
            for t in self._infos:
                if t.name not in state:
                    continue
                dst = getattr(t.module, t.attr)
                src = torch.as_tensor(np.asarray(state[t.name]), dtype=dst.dtype)
                if tuple(src.shape) != tuple(dst.shape):
                    raise ValueError(f"{t.name}: shape {tuple(src.shape)}, want {tuple(dst.shape)}")
                dst.copy_(src)

    def set_mode(self, train=True, dropout=True):
        """train: batch statistics (and running-statistic updates); dropout=False keeps every
        dropout layer the identity even then (the engine's net->dropout = 0)."""
        self.train(train)
        for m in self.modules():
            if isinstance(m, (nn.Dropout, nn.Dropout2d)):
                m.train(train and dropout)
        return self


# ---- emocam's tensor container (model/tfile.h)

_MAGIC = b"EMOCAMTF"


def fnv1a64(data):
    """FNV-1a 64 (sequential: about 1 MB/s in Python, plenty for reference files)."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def write_tfile(path, kind, meta, tensors):
    """tensors: iterable of (name, array); written as float32 little-endian."""
    out = bytearray(_MAGIC)
    out += struct.pack("<I", 1) + kind.encode("ascii")[:4].ljust(4, b" ")
    m = meta.encode("utf-8")
    out += struct.pack("<I", len(m)) + m
    tensors = list(tensors)
    out += struct.pack("<I", len(tensors))
    for name, arr in tensors:
        a = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
        if a.ndim == 0:
            a = a.reshape(1)
        nb = name.encode("utf-8")
        if not 0 < len(nb) <= 95 or not 1 <= a.ndim <= 4:
            raise ValueError(f"{path}: tensor {name}: bad name length or {a.ndim} dimensions")
        out += struct.pack("<H", len(nb)) + nb + struct.pack("<BB", 1, a.ndim)
        out += struct.pack(f"<{a.ndim}I", *a.shape) + a.tobytes()
    out += struct.pack("<Q", fnv1a64(bytes(out)))
    tmp = path + ".tmp"
    with open(tmp, "wb") as fp:
        fp.write(out)
    os.replace(tmp, path)


def read_tfile(path, kind=None):
    """(kind, meta, OrderedDict name -> float32 array), checking magic, version and checksum."""
    with open(path, "rb") as fp:
        buf = fp.read()
    if buf[:8] != _MAGIC:
        raise ValueError(f"{path}: not an emocam tensor file (bad magic)")
    if struct.unpack_from("<Q", buf, len(buf) - 8)[0] != fnv1a64(buf[:-8]):
        raise ValueError(f"{path}: checksum mismatch")
    ver, = struct.unpack_from("<I", buf, 8)
    if ver != 1:
        raise ValueError(f"{path}: format version {ver}")
    k = buf[12:16].decode("ascii")
    if kind and k != kind:
        raise ValueError(f"{path}: holds '{k}' data, expected '{kind}'")
    mlen, = struct.unpack_from("<I", buf, 16)
    meta = buf[20:20 + mlen].decode("utf-8")
    pos = 20 + mlen
    n, = struct.unpack_from("<I", buf, pos)
    pos += 4
    out = collections.OrderedDict()
    for _ in range(n):
        nl, = struct.unpack_from("<H", buf, pos)
        name = buf[pos + 2:pos + 2 + nl].decode("utf-8")
        pos += 2 + nl
        dtype, ndim = buf[pos], buf[pos + 1]
        pos += 2
        dims = struct.unpack_from(f"<{ndim}I", buf, pos)
        pos += 4 * ndim
        cnt = math.prod(dims)
        out[name] = np.frombuffer(buf, "<f4", cnt, pos).reshape(dims).copy()
        pos += 4 * cnt
    return k, meta, out
