#!/usr/bin/python3
"""PyTorch references for the Fashion-MNIST models and for conv/pool/batch norm.

Default mode writes two files under tests/data/:

fmnist_models_reference.safetensors (float32; read by tests/unit/test_torch_models.cpp)
  "input"            a fixed batch (8, 1, 28, 28) in [0, 1)
  "mlp.out", "cnn.out"  torch's eval-mode logits (8, 10) on that batch
  "<m>.state.<key>"  an entry of torch's state_dict() for model <m> (mlp or cnn), verbatim
                     (BatchNorm running stats after two training-mode forwards, and
                     num_batches_tracked as a 0-d int64 tensor)
  "<m>.u.<key>", "<m>.v.<key>"  for the large Linear weights only: the weight is the rank-6
                     product u @ v.T of the float32 factors, computed in float64 and rounded
                     to float32. The full weights (~2.5 MB in float32) would break the
                     300 KB limit on test data, so
                     the script sets those weights to low-rank values and stores the factors;
                     the test rebuilds the same float32 weight and every state key is still
                     one of torch's state_dict() keys.
  The models are built layer for layer as examples/fashion_mnist/models.hpp, so their keys
  ("1.weight", "1.running_mean", "9.weight", ...) are Ember's.

conv_reference.safetensors (float64; read by tests/unit/test_conv_reference.cpp)
  For each case <c>: its inputs "<c>.x" (and "<c>.weight", "<c>.bias", ...), the output
  "<c>.y", a fixed upstream gradient "<c>.gy" and torch's gradients "<c>.g<name>" for every
  floating input. The case parameters are listed in CASES below and repeated in the test.
  batch_norm training cases also store the updated running stats "<c>.new_running_mean/var".

--check mode reads tests/data/ember_{mlp,cnn}_state.safetensors (written by the Ember test
with EMBER_REGENERATE_TEST_DATA=1: Ember's state_dict() of a freshly initialised model plus
"input" and "output", Ember's eval-mode logits), loads each state into the torch model with
load_state_dict(strict=True) and checks torch's eval output against Ember's.

Usage: /usr/bin/python3 tests/reference/make_torch_models_reference.py [--check]
"""
import pathlib
import sys

import torch
from torch_safetensors import load_safetensors, reference_case, save_safetensors
import torch.nn as nn
import torch.nn.functional as F

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"







# ------------------------------------------------------------------ Fashion-MNIST models
def make_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def make_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10))


RANK = 6
LOW_RANK = {"mlp": ["1.weight", "3.weight"], "cnn": ["9.weight"]}


def write_models():
    torch.manual_seed(20251121)
    gen = torch.Generator().manual_seed(7)
    x = torch.rand(8, 1, 28, 28, generator=gen)
    out = {"input": x}
    for name, make in (("mlp", make_mlp), ("cnn", make_cnn)):
        model = make()
        with torch.no_grad():
            for key in LOW_RANK[name]:
                w = dict(model.named_parameters())[key]
                o, i = w.shape
                # Scaled so that u @ v.T has the spread of the default init (std ~ 1/sqrt(3 i)).
                u = torch.randn(o, RANK, generator=gen)
                v = torch.randn(i, RANK, generator=gen) / (RANK * 3 * i) ** 0.5
                w.copy_((u.double() @ v.double().T).float())
                out[f"{name}.u.{key}"] = u
                out[f"{name}.v.{key}"] = v
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):  # non-trivial affine parameters
                    m.weight.copy_(1 + 0.2 * torch.randn(m.num_features, generator=gen))
                    m.bias.copy_(0.1 * torch.randn(m.num_features, generator=gen))
            model.train()
            for _ in range(2):  # running stats away from (0, 1); num_batches_tracked = 2
                model(torch.rand(8, 1, 28, 28, generator=gen) * 1.5 - 0.2)
            model.eval()
            out[f"{name}.out"] = model(x)
        for key, t in model.state_dict().items():
            if key not in LOW_RANK[name]:
                out[f"{name}.state.{key}"] = t
    path = DATA / "fmnist_models_reference.safetensors"
    save_safetensors(path, out)
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(out)} tensors)")


# ------------------------------------------------------------------ conv / pool / batch norm
GEN = torch.Generator().manual_seed(20251122)


def randn(*shape):
    return torch.randn(*shape, generator=GEN, dtype=torch.float64)


def case(out, name, fn, inputs, extra=None):
    """Runs y = fn(**inputs), backward with a random gy; stores inputs, y, gy, gradients."""
    reference_case(out, name, fn, inputs, randn, extra)


# (name, input shape, weight shape, has bias, stride, padding, dilation, groups)
CONV_CASES = [
    ("conv_basic", (2, 3, 7, 6), (4, 3, 3, 3), True, 1, 0, 1, 1),
    ("conv_stride2", (2, 3, 9, 8), (5, 3, 3, 3), True, 2, 0, 1, 1),
    ("conv_pad1", (2, 3, 6, 7), (4, 3, 3, 3), True, 1, 1, 1, 1),
    ("conv_dilation2", (2, 2, 9, 9), (3, 2, 3, 3), True, 1, 0, 2, 1),
    ("conv_groups2", (2, 4, 7, 7), (6, 2, 3, 3), True, 1, 1, 1, 2),
    ("conv_mixed", (2, 4, 10, 9), (4, 2, 3, 2), False, (2, 1), (1, 2), (2, 1), 2),
    ("conv_1x1", (3, 5, 4, 4), (2, 5, 1, 1), True, 1, 0, 1, 1),
]

# (name, input shape, kernel, stride, padding, dilation, ceil_mode)
MAX_POOL_CASES = [
    ("max_pool_2", (2, 3, 8, 8), 2, None, 0, 1, False),
    ("max_pool_3s2p1", (2, 3, 9, 7), 3, 2, 1, 1, False),
    ("max_pool_dil_ceil", (1, 2, 10, 9), (3, 2), (2, 2), (1, 1), (2, 1), True),
]

# (name, input shape, kernel, stride, padding, ceil_mode, count_include_pad)
AVG_POOL_CASES = [
    ("avg_pool_2", (2, 3, 8, 8), 2, None, 0, False, True),
    ("avg_pool_pad_incl", (2, 3, 9, 7), 3, 2, 1, False, True),
    ("avg_pool_pad_excl", (2, 3, 9, 7), 3, 2, 1, False, False),
    ("avg_pool_ceil_excl", (1, 2, 8, 7), (3, 2), 2, (1, 1), True, False),
    ("avg_pool_ceil_incl", (1, 2, 8, 7), (3, 2), 2, (1, 1), True, True),
]

# (name, input shape, output size)
ADAPTIVE_CASES = [
    ("adaptive_3x4", (2, 3, 7, 9), (3, 4)),
    ("adaptive_1x1", (2, 3, 5, 6), (1, 1)),
    ("adaptive_up", (1, 2, 3, 4), (5, 6)),
]


def write_conv():
    out = {}
    for name, xs, ws, has_bias, stride, padding, dilation, groups in CONV_CASES:
        inputs = {"x": randn(*xs), "weight": randn(*ws)}
        if has_bias:
            inputs["bias"] = randn(ws[0])
        case(out, name, lambda x, weight, bias=None: F.conv2d(x, weight, bias, stride, padding, dilation, groups),
             inputs)
    for name, xs, k, s, p, d, ceil in MAX_POOL_CASES:
        case(out, name, lambda x: F.max_pool2d(x, k, s, p, d, ceil_mode=ceil), {"x": randn(*xs)})
    for name, xs, k, s, p, ceil, incl in AVG_POOL_CASES:
        case(out, name, lambda x: F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=incl),
             {"x": randn(*xs)})
    for name, xs, osz in ADAPTIVE_CASES:
        case(out, name, lambda x: F.adaptive_avg_pool2d(x, osz), {"x": randn(*xs)})
    # batch_norm: (name, input shape, training, momentum, eps)
    for name, xs, training, momentum, eps in [("bn_train", (4, 3, 5, 5), True, 0.1, 1e-5),
                                              ("bn_train_2d", (6, 4), True, 0.3, 1e-3),
                                              ("bn_eval", (4, 3, 5, 5), False, 0.1, 1e-5)]:
        c = xs[1]
        rm, rv = randn(c), randn(c).abs() + 0.5
        new_rm, new_rv = rm.clone(), rv.clone()
        case(out, name,
             lambda x, weight, bias: F.batch_norm(x, new_rm, new_rv, weight, bias, training, momentum, eps),
             {"x": randn(*xs) * 2 + 0.5, "weight": randn(c), "bias": randn(c)},
             extra={"running_mean": rm, "running_var": rv})
        if training:
            out[f"{name}.new_running_mean"] = new_rm
            out[f"{name}.new_running_var"] = new_rv
    path = DATA / "conv_reference.safetensors"
    save_safetensors(path, out)
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(out)} tensors)")


# ------------------------------------------------------------------ Ember -> PyTorch check
def check():
    ok = True
    for name, make in (("mlp", make_mlp), ("cnn", make_cnn)):
        path = DATA / f"ember_{name}_state.safetensors"
        tensors = load_safetensors(path)
        x, ember_out = tensors.pop("input"), tensors.pop("output")
        model = make()
        model.load_state_dict(tensors, strict=True)  # raises on any missing/unexpected key or shape
        for key, t in model.state_dict().items():  # dtypes too (num_batches_tracked is int64)
            if t.dtype != tensors[key].dtype:
                print(f"{name}: {key} is {tensors[key].dtype} in Ember's file, torch has {t.dtype}")
                ok = False
        model.eval()
        with torch.no_grad():
            y = model(x)
        diff = (y - ember_out).abs()
        tol = 1e-5 + 1e-5 * ember_out.abs()
        good = bool(torch.all(diff <= tol))  # NaN compares false
        print(f"{name}: {len(tensors)} state tensors loaded strictly; max |torch - ember| = "
              f"{diff.max().item():.3g} -> {'OK' if good else 'MISMATCH'}")
        ok = ok and good
    return ok


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        sys.exit(0 if check() else 1)
    write_models()
    write_conv()
