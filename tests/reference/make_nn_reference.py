#!/usr/bin/python3
"""Reference values for Ember's nn layers and losses (tests/unit/test_nn_reference.cpp).

Writes tests/data/nn_reference.safetensors, all float64 (class indices int64). For each case
<c> the file holds its inputs, parameters, the output "<c>.y" and, for a fixed upstream
gradient "<c>.gy" (a scalar for reduced losses), the gradients "<c>.g<name>" with respect to
the input and every parameter, computed by PyTorch's autograd:

  linear            x (4, 5), weight (3, 5), bias (3)            -> gx, gweight, gbias
  layer_norm        x (2, 3, 4) over (3, 4), weight, bias         -> gx, gweight, gbias
  layer_norm_plain  x (3, 5) over (5,), no affine, eps 1e-3       -> gx
  embedding         weight (7, 4), idx (2, 3) with repeats        -> gweight
  dropout_eval      x (3, 4), p 0.5 in eval mode                  -> gx
  relu, gelu, gelu_tanh, silu, tanh, sigmoid: x (24,)             -> gx
  ce_mean, ce_sum, ce_none, ce_ignore (ignore_index 1), ce_smooth (label_smoothing 0.1),
  ce_weight (class weights), ce_weight_smooth, ce_3d (logits (2, 4, 3), target (2, 3)),
  ce_ignore_default (a target of -100): x (5, 4) logits, target    -> gx
  nll_mean, nll_sum, nll_none, nll_weight: x (5, 4) log-probs       -> gx
  mse_mean, mse_sum, mse_none: x, target (3, 4)                   -> gx, gtarget
  bce_mean, bce_sum, bce_none, bce_pos_weight (pos_weight (4,)): x, target (3, 4) -> gx, gtarget

Usage: /usr/bin/python3 tests/reference/make_nn_reference.py   (needs PyTorch, not safetensors)
"""
import pathlib

import torch
from torch_safetensors import reference_case, save_safetensors
import torch.nn.functional as F

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"
OUT = DATA / "nn_reference.safetensors"





GEN = torch.Generator().manual_seed(20240611)


def randn(*shape):
    return torch.randn(*shape, generator=GEN, dtype=torch.float64)


def case(out, name, fn, inputs, extra=None, gy=None):
    reference_case(out, name, fn, inputs, randn, extra, gy)


def main():
    out = {}
    case(out, "linear", lambda x, weight, bias: F.linear(x, weight, bias),
         {"x": randn(4, 5), "weight": randn(3, 5), "bias": randn(3)})
    case(out, "layer_norm", lambda x, weight, bias: F.layer_norm(x, (3, 4), weight, bias, 1e-5),
         {"x": randn(2, 3, 4) * 2 + 0.5, "weight": randn(3, 4), "bias": randn(3, 4)})
    case(out, "layer_norm_plain", lambda x: F.layer_norm(x, (5,), None, None, 1e-3), {"x": randn(3, 5)})
    case(out, "embedding", lambda weight, idx: F.embedding(idx, weight),
         {"weight": randn(7, 4), "idx": torch.tensor([[0, 3, 6], [3, 3, 1]])})
    case(out, "dropout_eval", lambda x: F.dropout(x, 0.5, training=False), {"x": randn(3, 4)})

    act_x = torch.cat([randn(20) * 3, torch.tensor([-0.5, 0.25, 1e-3, -8.0], dtype=torch.float64)])
    case(out, "relu", lambda x: F.relu(x), {"x": act_x})
    case(out, "gelu", lambda x: F.gelu(x), {"x": act_x})
    case(out, "gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), {"x": act_x})
    case(out, "silu", lambda x: F.silu(x), {"x": act_x})
    case(out, "tanh", lambda x: torch.tanh(x), {"x": act_x})
    case(out, "sigmoid", lambda x: torch.sigmoid(x), {"x": act_x})

    logits = randn(5, 4) * 2
    target = torch.tensor([0, 3, 1, 2, 1])
    cw = torch.tensor([0.5, 2.0, 1.0, 1.5], dtype=torch.float64)
    ce = lambda **kw: (lambda x, target: F.cross_entropy(x, target, **kw))
    case(out, "ce_mean", ce(), {"x": logits, "target": target})
    case(out, "ce_sum", ce(reduction="sum"), {"x": logits, "target": target})
    case(out, "ce_none", ce(reduction="none"), {"x": logits, "target": target})
    case(out, "ce_ignore", ce(ignore_index=1), {"x": logits, "target": target})
    case(out, "ce_ignore_default", ce(), {"x": logits, "target": torch.tensor([0, -100, 1, 2, -100])})
    case(out, "ce_smooth", ce(label_smoothing=0.1), {"x": logits, "target": target})
    case(out, "ce_smooth_ignore", ce(label_smoothing=0.1, ignore_index=1), {"x": logits, "target": target})
    case(out, "ce_weight", ce(weight=cw), {"x": logits, "target": target}, extra={"weight": cw})
    case(out, "ce_weight_sum", ce(weight=cw, reduction="sum"), {"x": logits, "target": target}, extra={"weight": cw})
    case(out, "ce_weight_smooth", ce(weight=cw, label_smoothing=0.1), {"x": logits, "target": target},
         extra={"weight": cw})
    case(out, "ce_weight_smooth_none", ce(weight=cw, label_smoothing=0.1, reduction="none"),
         {"x": logits, "target": target}, extra={"weight": cw})
    case(out, "ce_3d", ce(), {"x": randn(2, 4, 3), "target": torch.tensor([[0, 3, 2], [1, 1, 0]])})

    logp = F.log_softmax(randn(5, 4), dim=1)
    nll = lambda **kw: (lambda x, target: F.nll_loss(x, target, **kw))
    case(out, "nll_mean", nll(), {"x": logp, "target": target})
    case(out, "nll_sum", nll(reduction="sum"), {"x": logp, "target": target})
    case(out, "nll_none", nll(reduction="none"), {"x": logp, "target": target})
    case(out, "nll_weight", nll(weight=cw, ignore_index=2), {"x": logp, "target": target}, extra={"weight": cw})

    mse = lambda r: (lambda x, target: F.mse_loss(x, target, reduction=r))
    mx, mt = randn(3, 4), randn(3, 4)
    for r in ("mean", "sum", "none"):
        case(out, f"mse_{r}", mse(r), {"x": mx, "target": mt})

    bx = randn(3, 4) * 4
    bt = torch.rand(3, 4, generator=GEN, dtype=torch.float64)
    bce = lambda r, **kw: (lambda x, target: F.binary_cross_entropy_with_logits(x, target, reduction=r, **kw))
    for r in ("mean", "sum", "none"):
        case(out, f"bce_{r}", bce(r), {"x": bx, "target": bt})
    pw = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    case(out, "bce_pos_weight", bce("mean", pos_weight=pw), {"x": bx, "target": bt}, extra={"pos_weight": pw})

    DATA.mkdir(parents=True, exist_ok=True)
    save_safetensors(OUT, out)
    print(f"wrote {len(out)} tensors to {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
