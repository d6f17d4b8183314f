#!/usr/bin/python3
"""Reference trajectories for Ember's optimizers and learning-rate schedulers.

Writes tests/data/optim_reference.safetensors, read by tests/unit/test_optim_reference.cpp and
tests/unit/test_scheduler.cpp. Everything is float64.

Optimizers: two parameters ("p0" of shape (3, 4), "p1" of shape (5,)) start from "init.p0" /
"init.p1" and take 10 steps; before step t (0-based) their gradients are set to
"grad.<t>.p0" / "grad.<t>.p1" (a fixed sequence, so no autograd is involved). After step t the
parameters of configuration <cfg> are "<cfg>.<t>.p0" / "<cfg>.<t>.p1". The configurations are
listed in OPTIM_CONFIGS (mirrored in the C++ test).

Schedulers: "sched.<name>.lr" is a 1-d tensor of 31 learning rates: get_last_lr() after
construction, then after each of 30 step() calls, for a single-group optimizer with lr 0.1
(SGD with momentum 0.9, or Adam where noted). OneCycleLR also records the cycled momentum /
beta1 as "sched.<name>.momentum".

Requires PyTorch (Debian's python3-torch 1.13 at /usr/bin/python3). The safetensors file is
written by the small writer below, so the `safetensors` package is not needed.

Usage: /usr/bin/python3 tests/reference/make_optim_reference.py
"""
import pathlib

import torch
from torch_safetensors import save_safetensors

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"
OUT = DATA / "optim_reference.safetensors"
STEPS = 10
SCHED_STEPS = 30





# name -> (optimizer class, groups builder). Each builder gets [p0, p1] and returns the
# optimizer. Mirrored by kOptimConfigs in test_optim_reference.cpp.
OPTIM_CONFIGS = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "sgd_momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
    "sgd_nesterov_wd": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "sgd_dampening_wd": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.8, dampening=0.3, weight_decay=0.02),
    "sgd_groups": lambda ps: torch.optim.SGD(
        [{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.01, "momentum": 0.5}], lr=0.1, momentum=0.9),
    "adam": lambda ps: torch.optim.Adam(ps, lr=0.01),
    "adam_wd": lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    "adamw_default": lambda ps: torch.optim.AdamW(ps),
}


def optimizer_trajectories(out):
    g = torch.Generator().manual_seed(1234)
    init = [torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)]
    grads = [[torch.randn(3, 4, generator=g, dtype=torch.float64) * (1 + t % 3),
              torch.randn(5, generator=g, dtype=torch.float64) * 0.1] for t in range(STEPS)]
    out["init.p0"], out["init.p1"] = init
    for t in range(STEPS):
        out[f"grad.{t}.p0"], out[f"grad.{t}.p1"] = grads[t]
    for cfg, make in OPTIM_CONFIGS.items():
        ps = [p.clone().requires_grad_(True) for p in init]
        opt = make(ps)
        for t in range(STEPS):
            for p, gr in zip(ps, grads[t]):
                p.grad = gr.clone()
            opt.step()
            out[f"{cfg}.{t}.p0"], out[f"{cfg}.{t}.p1"] = (p.detach().clone() for p in ps)
    # Adam whose beta1 and lr follow OneCycleLR (cycle_momentum drives "betas"[0]).
    ps = [p.clone().requires_grad_(True) for p in init]
    opt = torch.optim.Adam(ps, lr=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=STEPS)
    for t in range(STEPS):
        for p, gr in zip(ps, grads[t]):
            p.grad = gr.clone()
        opt.step()
        sched.step() if t + 1 < STEPS else None
        out[f"adam_onecycle.{t}.p0"], out[f"adam_onecycle.{t}.p1"] = (p.detach().clone() for p in ps)


def lr_sequence(make, adam=False):
    p = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1) if adam else torch.optim.SGD([p], lr=0.1, momentum=0.9)
    sched = make(opt)
    key = "betas" if adam else "momentum"
    mom = lambda: opt.param_groups[0][key][0] if adam else opt.param_groups[0][key]
    lrs, moms = [sched.get_last_lr()[0]], [mom()]
    for _ in range(SCHED_STEPS):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
        moms.append(mom())
    return torch.tensor(lrs, dtype=torch.float64), torch.tensor(moms, dtype=torch.float64)


S = torch.optim.lr_scheduler
# Mirrored by the tests in test_scheduler.cpp.
SCHED_CONFIGS = {
    "step": (lambda o: S.StepLR(o, step_size=7, gamma=0.5), False),
    "multistep": (lambda o: S.MultiStepLR(o, milestones=[5, 12, 12, 20], gamma=0.3), False),
    "exponential": (lambda o: S.ExponentialLR(o, gamma=0.9), False),
    "cosine": (lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001), False),
    "cosine_zero": (lambda o: S.CosineAnnealingLR(o, T_max=7), False),
    "linear": (lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=8), False),
    "linear_decay": (lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=10), False),
    "onecycle_cos": (lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=31, pct_start=0.3), False),
    "onecycle_linear_3phase": (lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=30, pct_start=0.25,
                                                      anneal_strategy="linear", div_factor=10.0,
                                                      final_div_factor=100.0, three_phase=True,
                                                      base_momentum=0.8, max_momentum=0.9), False),
    "onecycle_adam": (lambda o: S.OneCycleLR(o, max_lr=0.3, total_steps=40), True),
    "sequential": (lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=5),
                                                S.CosineAnnealingLR(o, T_max=20, eta_min=1e-4)], milestones=[5]),
                   False),
    "sequential3": (lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.5, total_iters=4),
                                                 S.ExponentialLR(o, gamma=0.95),
                                                 S.CosineAnnealingLR(o, T_max=10)], milestones=[4, 12]), False),
}


def scheduler_sequences(out):
    for name, (make, adam) in SCHED_CONFIGS.items():
        lrs, moms = lr_sequence(make, adam)
        out[f"sched.{name}.lr"] = lrs
        if name.startswith("onecycle"):
            out[f"sched.{name}.momentum"] = moms


def main():
    out = {}
    optimizer_trajectories(out)
    scheduler_sequences(out)
    DATA.mkdir(parents=True, exist_ok=True)
    save_safetensors(OUT, out)
    print(f"wrote {len(out)} tensors to {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    import warnings
    warnings.filterwarnings("ignore", category=UserWarning)
    main()
