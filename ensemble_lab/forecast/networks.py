"""The network every learned forecaster of the course uses: a small convolution around the Lorenz-96 ring.

Lorenz-96 is LOCAL (``dx_j/dt`` depends on ``x_{j-2} .. x_{j+1}``) and the same at every ``j``, so a stack of
circular 1-d convolutions is the natural emulator: a handful of weights shared around the ring, exactly
equivariant to rotations of it, with a receptive field (``layers * (kernel - 1) + 1`` variables) that covers
the stencil of one lead interval.  It is what the learned-emulator literature on Lorenz-96 uses (e.g.
Dueben and Bauer 2018; Chattopadhyay et al. 2020), and what FuXi-ENS and SEEDS replace by transformers on the
sphere at full scale.

:class:`RingNet` maps ``(B, c_in, J)`` channels to ``(B, c_out, J)``; with ``members = K > 1`` it holds K
independent networks as one grouped convolution (input ``(B, K * c_in, J)``, output ``(B, K * c_out, J)``),
which trains a deep ensemble in one forward pass.  States enter and leave in the units of ``x``, normalised by
the climatology of Lorenz-96 with F = 8 (:data:`CLIMATE_MEAN`, :data:`CLIMATE_STD`, measured on a long run).

>>> import torch
>>> net = RingNet(2, 1, hidden=8, layers=2)
>>> net(torch.zeros(3, 2, 40)).shape, net.receptive_field
(torch.Size([3, 1, 40]), 9)
>>> macs_per_state(net, 40) == sum(p.numel() for n, p in net.named_parameters() if "weight" in n) * 40
True
"""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_int

__all__ = ["RingNet", "CLIMATE_MEAN", "CLIMATE_STD", "normalise", "denormalise", "macs_per_state"]

#: the climatological mean and standard deviation of x_j for F = 8 (a 16-chain run of 640 time units)
CLIMATE_MEAN = 2.3
CLIMATE_STD = 3.6


def normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - CLIMATE_MEAN) / CLIMATE_STD


def denormalise(x: torch.Tensor) -> torch.Tensor:
    return x * CLIMATE_STD + CLIMATE_MEAN


class RingNet(nn.Module):
    """``layers`` circular convolutions of width ``hidden`` (GELU between), then a 1x1 convolution to ``c_out``.

    The last layer starts at zero, so a residual forecaster built on it starts as persistence.
    """

    def __init__(self, c_in: int, c_out: int, *, hidden: int = 24, layers: int = 4, kernel: int = 5, members: int = 1):
        super().__init__()
        c_in = check_int(c_in, "c_in", minimum=1, maximum=1024)
        c_out = check_int(c_out, "c_out", minimum=1, maximum=1024)
        hidden = check_int(hidden, "hidden", minimum=1, maximum=4096)
        layers = check_int(layers, "layers", minimum=1, maximum=64)
        kernel = check_int(kernel, "kernel", minimum=1, maximum=63)
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (the stencil is centred), got {kernel}")
        k = self.members = check_int(members, "members", minimum=1, maximum=1024)
        self.config = dict(c_in=c_in, c_out=c_out, hidden=hidden, layers=layers, kernel=kernel, members=k)
        mods: list[nn.Module] = []
        c = c_in
        for _ in range(layers):
            mods += [nn.Conv1d(k * c, k * hidden, kernel, padding=kernel // 2, padding_mode="circular", groups=k)]
            mods += [nn.GELU()]
            c = hidden
        last = nn.Conv1d(k * c, k * c_out, 1, groups=k)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*mods, last)
        self.receptive_field = layers * (kernel - 1) + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def macs_per_state(net: RingNet, n_variables: int) -> int:
    """Multiply-accumulates of one forward pass of ``net`` on ONE state of ``n_variables`` (all its members)."""
    weights = sum(p.numel() for name, p in net.named_parameters() if name.endswith("weight"))
    return weights * n_variables


def train_loop(
    module: nn.Module, loss_fn, *, iterations: int, lr: float, desc: str, progress: bool = True
) -> list[float]:
    """Adam with a cosine-decayed learning rate for ``iterations`` steps of ``loss_fn(step) -> scalar``.

    Returns the loss of every step.  Refuses to go on (ValueError) if a loss is not finite.
    """
    from tqdm.auto import tqdm

    opt = torch.optim.Adam(module.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iterations)
    losses = []
    for step in tqdm(range(iterations), desc=desc, disable=not progress, leave=False):
        loss = loss_fn(step)
        if not torch.isfinite(loss):
            raise ValueError(f"{desc}: the training loss became {loss.item()} at step {step}; lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses
