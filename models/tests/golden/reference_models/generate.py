"""Independent golden for the `models` crate: builds the BNAS networks with torch.nn from the spec
(`docs/reference.md` §2, §3, §6, §7) and records what the Rust spec must reproduce.

For every named model it writes `<model>.json` with:
- `params`: learnable parameters counted as the reference counts them (`named_parameters`);
- `state_dict`: every state_dict key (buffers included, no `module.` prefix) with its shape, in order;
- `convs`: every Conv2d/Linear in execution order with its MACs per sample (measured by forward
  hooks on a real forward pass), its precision by default and in reference-compat mode (derived
  with the reference's BinOp selection over the module tree), and whether it is dead. Deadness is measured
  dynamically (BNAS-A only, where Zeroise ops exist): a layer is dead when re-randomizing its weights
  leaves the logits bit-identical.

Run once with PyTorch installed (`python generate.py`); CI only reads the JSON it writes.
"""
import json
import sys
from collections import namedtuple
from pathlib import Path

import torch
import torch.nn as nn

Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")

ZEROISE = Genotype(
    normal=[("none", 1), ("bin_dil_conv_3x3", 0), ("bin_conv_3x3", 1), ("none", 2),
            ("none", 2), ("none", 3), ("none", 3), ("none", 4)],
    normal_concat=range(2, 6),
    reduce=[("max_pool_3x3", 0), ("none", 1), ("max_pool_3x3", 0), ("none", 2),
            ("none", 3), ("none", 2), ("none", 3), ("none", 4)],
    reduce_concat=range(2, 6),
)
DENSE = Genotype(
    normal=[("bin_conv_3x3", 1), ("bin_dil_conv_3x3", 0), ("bin_conv_3x3", 1), ("bin_conv_3x3", 2),
            ("bin_conv_3x3", 2), ("bin_dil_conv_3x3", 1), ("bin_dil_conv_3x3", 1), ("bin_conv_3x3", 0)],
    normal_concat=range(2, 6),
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("max_pool_3x3", 0), ("bin_conv_3x3", 2),
            ("max_pool_3x3", 0), ("bin_dil_conv_3x3", 3), ("max_pool_3x3", 0), ("bin_dil_conv_3x3", 4)],
    reduce_concat=range(2, 6),
)

# name: (topology, genotype, layers, channels, classes, input size)
MODELS = {
    "bnas-a": ("cifar", ZEROISE, 20, 36, 10, 32),
    "bnas-d": ("imagenet", DENSE, 12, 64, 1000, 224),
    "bnas-e": ("imagenet", DENSE, 12, 68, 1000, 224),
    "bnas-f": ("imagenet", DENSE, 15, 68, 1000, 224),
    "bnas-g": ("imagenet", DENSE, 11, 74, 1000, 224),
    "bnas-h": ("imagenet", DENSE, 16, 128, 1000, 224),
}
PUBLISHED_PARAMS = {"bnas-a": 5_578_252, "bnas-f": 39_781_442}


class BinaryBlock(nn.Module):
    """BN(in) -> sign -> conv -> ReLU (reference §1); keys `bn.*`, `op.0.weight`."""

    def __init__(self, c_in, c_out, k, stride, pad, dilation=1, affine=True):
        super().__init__()
        self.bn = nn.BatchNorm2d(c_in, affine=affine)
        self.op = nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, pad, dilation=dilation, bias=False), nn.ReLU())

    def forward(self, x):
        x = torch.where(self.bn(x) >= 0, 1.0, -1.0)
        return self.op(x)


class FloatStem(nn.Module):
    """CIFAR stem: BN(in) -> conv 3x3 -> ReLU; keys `bn.*`, `op.0.weight`."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.bn = nn.BatchNorm2d(c_in)
        self.op = nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.ReLU())

    def forward(self, x):
        return self.op(self.bn(x))


class Zeroise(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


def make_op(name, c, stride):
    if name == "none":
        return Zeroise(stride)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride, 1, count_include_pad=False)
    kernel, dilation = {
        "bin_conv_3x3": (3, 1), "bin_conv_5x5": (5, 1),
        "bin_dil_conv_3x3": (3, 2), "bin_dil_conv_5x5": (5, 2),
    }[name]
    return BinaryBlock(c, c, kernel, stride, dilation * (kernel - 1) // 2, dilation)


class Cell(nn.Module):
    def __init__(self, topology, genotype, index, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.index, self.reduction = index, reduction
        suffix = "_red" if topology == "imagenet" and reduction else ""
        if reduction_prev:
            pre0 = BinaryBlock(c_pp, c, 3, 2, 1, affine=topology == "imagenet")
        else:
            pre0 = BinaryBlock(c_pp, c, 1, 1, 0)
        setattr(self, "preprocess0" + suffix, pre0)
        setattr(self, "preprocess1" + suffix, BinaryBlock(c_p, c, 1, 1, 0))
        self.pre_names = ("preprocess0" + suffix, "preprocess1" + suffix)
        if reduction:
            self.preprocess_res = nn.Sequential(nn.BatchNorm2d(c_p), nn.Conv2d(c_p, 4 * c, 2, 2))
        edges = genotype.reduce if reduction else genotype.normal
        self._ops = nn.ModuleList(make_op(op, c, 2 if reduction and i < 2 else 1) for op, i in edges)
        self.inputs = [i for _, i in edges]

    def forward(self, s0, s1):
        pre0, pre1 = (getattr(self, n) for n in self.pre_names)
        states = [pre0(s0), pre1(s1)]
        for node in range(4):
            a, b = 2 * node, 2 * node + 1
            states.append(self._ops[a](states[self.inputs[a]]) + self._ops[b](states[self.inputs[b]]))
        out = torch.cat(states[2:], dim=1)
        if self.index == 0:
            return out
        return out + (self.preprocess_res(s1) if self.reduction else s1)


class Network(nn.Module):
    def __init__(self, topology, genotype, layers, c, classes, in_channels=3):
        super().__init__()
        self.topology = topology
        if topology == "cifar":
            self.stem = FloatStem(in_channels, 3 * c)
            c_pp, c_p, reduction_prev = 3 * c, 3 * c, False
        else:
            self.stem0 = nn.Sequential(
                nn.Conv2d(in_channels, c // 2, 3, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(),
                nn.Conv2d(c // 2, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c))
            self.stem1 = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c))
            c_pp, c_p, reduction_prev = c, c, True
        cells, c_cur = [], c
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_cur *= 2
            cells.append(Cell(topology, genotype, i, c_pp, c_p, c_cur, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, 4 * c_cur
        self.cells = nn.ModuleList(cells)
        self.classifier = nn.Linear(c_p, classes)

    def forward(self, x):
        if self.topology == "cifar":
            s0 = s1 = self.stem(x)
        else:
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(s1.mean(dim=(2, 3)))


def precisions(net, num_skip):
    """Precision of every Conv2d/Linear, default and reference-compat, derived the way the
    reference's BinOp selects convs (reference §1): walk `named_modules`, skip the first `num_skip`
    convs and every `res` conv; the reference's own range only reaches the count of non-`res`
    convs while its index counts the `res` ones too, so the convs past that count keep float
    weights (their inputs are still binarized)."""
    convs = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    reachable = sum("res" not in n for n in convs)
    default, compat = {}, {}
    for index, name in enumerate(convs, start=1):
        binarized = "res" not in name and index > num_skip
        default[name] = "binary" if binarized else "float"
        compat[name] = default[name] if not binarized or index <= reachable else "compat"
    default["classifier"] = compat["classifier"] = "float"
    return default, compat


def randomize_batchnorms(net):
    """Fresh BatchNorms make every binarized input +1 after a ReLU; random statistics make the
    thresholds real, so that a weight change can reach the logits."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(0.0, 1.0)
                m.running_var.uniform_(0.5, 2.0)
                if m.affine:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.5, 0.5)


def measure(net, size, probe_dead, num_skip):
    """Per-layer MACs from a real forward pass, and (optionally) dynamic deadness."""
    randomize_batchnorms(net)
    default, compat = precisions(net, num_skip)
    weighted = [(n, m) for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    macs, order = {}, []

    def hook(name):
        def record(module, inputs, output):
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                per_out = module.in_channels * kh * kw
            else:
                per_out = module.in_features
            macs[name] = output[0].numel() * per_out
            order.append(name)
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in weighted]
    x = torch.randn(1, net_in_channels(net), size, size)
    with torch.no_grad():
        reference = net(x)
    for h in handles:
        h.remove()
    result = []
    for name in order:
        module = dict(weighted)[name]
        entry = {"name": name, "precision": default[name], "compat_precision": compat[name], "macs": macs[name]}
        if probe_dead:
            saved = module.weight.detach().clone()
            with torch.no_grad():
                module.weight.copy_(torch.randn_like(saved) * 3.0 + 0.5)
                entry["dead"] = bool(torch.equal(net(x), reference))
                module.weight.copy_(saved)
        result.append(entry)
    return result


def net_in_channels(net):
    return net.stem.bn.num_features if net.topology == "cifar" else net.stem0[0].in_channels


def main():
    out_dir = Path(__file__).resolve().parent
    torch.manual_seed(0)
    for name, (topology, genotype, layers, c, classes, size) in MODELS.items():
        net = Network(topology, genotype, layers, c, classes).eval()
        params = sum(p.numel() for p in net.parameters())
        if name in PUBLISHED_PARAMS and params != PUBLISHED_PARAMS[name]:
            sys.exit(f"{name}: {params} params, the reference publishes {PUBLISHED_PARAMS[name]}")
        state = [{"name": k, "shape": list(v.shape)} for k, v in net.state_dict().items()]
        record = {
            "model": name,
            "params": params,
            "state_dict": state,
            "convs": measure(net, size, probe_dead=genotype is ZEROISE, num_skip=1 if topology == "cifar" else 3),
        }
        (out_dir / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"{name}: {params} params, {len(state)} state_dict entries")


if __name__ == "__main__":
    main()
