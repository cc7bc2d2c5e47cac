"""The SEEDS idea at small scale: a conditional generative model that turns 2 ensemble members into many.

SEEDS (Li et al., 2024) trains a diffusion model on the 31-member GEFS reforecast: given two members (the
"seeds") of a forecast at some lead time, it samples more members of the same forecast.  Sampling a member
costs a few network evaluations instead of a full physics run, so a large ensemble costs little more than two
members.  Trained to emulate the ensemble (SEEDS-GEE) its members look like more physics members; trained
towards the reanalysis instead (SEEDS-GPP, "generative post-processing") it also corrects the ensemble's bias
and spread.

Here the generative model is CONDITIONAL FLOW MATCHING (Lipman et al. 2023; rectified flow, Liu et al. 2023)
rather than a diffusion model: both learn to carry Gaussian noise to the data along a learned vector field;
flow matching regresses the velocity ``x1 - x0`` along straight paths ``x_t = (1 - t) x0 + t x1`` and samples
with a few Euler steps of that ODE.  It is simpler to train at this scale, and the issue allows either.
Our choices, which SEEDS does not prescribe in this form:

- the model generates the DEVIATION of a member from the seeds' mean, in units of the climatological std;
- the seeds enter order-free, as their mean and their absolute difference (two channels), with the flow time
  and the lead time (as a fraction of the longest lead) as constant channels: one network for all leads;
- each lead time is generated on its own, as SEEDS does: a generated member is a set of snapshots, not one
  trajectory, so scores per lead are meaningful but a member's path from lead to lead is not.

:func:`train_seeds` with ``targets=None`` trains the emulator of the ensemble (a third member of the same
forecast is the target); with ``targets=truth`` it trains the post-processed variant.

The authors' public code (google-research's ``seeds`` folder) holds a gridding library, a demo colab and the
trained TensorFlow models, not the training code; the choices above follow the paper's text.

>>> import torch
>>> model = SeedsGenerator(hidden=4, layers=1)     # untrained: velocity 0, so the samples are the noise
>>> seeds = torch.stack([torch.zeros(3, 2, 40), torch.ones(3, 2, 40)])   # (2, N, L + 1, J)
>>> out = model.sample(seeds, n_members=4, steps=2, seed=0)
>>> tuple(out.shape)
(4, 3, 2, 40)
"""

from __future__ import annotations

import torch
from torch import nn

from .._validation import (
    MAX_COUNT,
    as_tensor,
    check_finite_tensor,
    check_int,
    check_positive,
    check_seed,
    check_sequence,
)
from .emulator import check_states
from .networks import CLIMATE_STD, RingNet, macs_per_state, normalise, train_loop

__all__ = ["SeedsGenerator", "train_seeds", "check_seeds"]


def check_seeds(seeds, name: str = "seeds") -> torch.Tensor:
    """Two members ``(2, N, L + 1, J)`` as a finite float32 tensor."""
    t = as_tensor(seeds, name)
    if t.ndim != 4 or t.shape[0] != 2 or t.shape[-1] < 4 or t.numel() == 0:
        raise ValueError(f"{name} must have shape (2, N, L + 1, J): two members of a forecast, got {tuple(t.shape)}")
    check_finite_tensor(t, name)
    return t.float()


class SeedsGenerator(nn.Module):
    """The velocity field ``v(x_t, t | seeds, lead)`` of the deviation from the seeds' mean."""

    def __init__(self, *, hidden: int = 24, layers: int = 4, kernel: int = 5, max_lead: int = 10):
        super().__init__()
        self.net = RingNet(5, 1, hidden=hidden, layers=layers, kernel=kernel)
        self.max_lead = check_int(max_lead, "max_lead", minimum=1, maximum=MAX_COUNT)

    def velocity(self, xt, t, mean, gap, lead_fraction) -> torch.Tensor:
        """All ``(B, J)`` but ``t`` and ``lead_fraction`` ``(B,)``; returns ``(B, J)``."""
        ones = torch.ones_like(xt)
        inp = torch.stack([xt, normalise(mean), gap / CLIMATE_STD, t[:, None] * ones, lead_fraction[:, None] * ones], 1)
        return self.net(inp)[:, 0]

    @torch.no_grad()
    def sample(self, seeds, n_members: int, *, steps: int = 8, seed: int = 0, leads=None) -> torch.Tensor:
        """``n_members`` new members ``(M, N, L', J)`` from ``seeds`` ``(2, N, L', J)`` (Euler steps of the flow
        from Gaussian noise; ``steps`` network evaluations per member and lead).  ``leads``: the lead index of
        each of the seeds' ``L'`` lead slices (default ``0 .. L' - 1``); since every lead is generated on its
        own, generating only the leads one needs costs proportionally less."""
        s = check_seeds(seeds)
        m = check_int(n_members, "n_members", minimum=1, maximum=100_000)
        steps = check_int(steps, "steps", minimum=1, maximum=10_000)
        gen = torch.Generator().manual_seed(check_seed(seed))
        _, n, leads_n, j = s.shape
        if leads is None:
            lead_index = torch.arange(leads_n, dtype=torch.float32)
        else:
            items = [check_int(v, "leads", minimum=0, maximum=MAX_COUNT) for v in check_sequence(leads, "leads")]
            if len(items) != leads_n:
                raise ValueError(f"leads must name one lead per lead slice of seeds ({leads_n}), got {len(items)}")
            lead_index = torch.tensor(items, dtype=torch.float32)
        mean, gap = s.mean(0), (s[0] - s[1]).abs()
        lead = (lead_index / self.max_lead).expand(n, leads_n)
        flat = lambda t: t.expand(m, *t.shape).reshape(-1, j)  # noqa: E731
        mean_f, gap_f = flat(mean), flat(gap)
        lead_f = lead.expand(m, n, leads_n).reshape(-1)
        x = torch.randn(mean_f.shape, generator=gen)
        for i in range(steps):
            t = torch.full((x.shape[0],), i / steps)
            x = x + self.velocity(x, t, mean_f, gap_f, lead_f) / steps
        return (mean_f + CLIMATE_STD * x).reshape(m, n, leads_n, j)

    def macs_per_lead(self, n_variables: int, steps: int = 8) -> int:
        """Multiply-accumulates of one generated member at one lead (``steps`` network evaluations)."""
        return steps * macs_per_state(self.net, n_variables)


def train_seeds(
    ensembles,
    targets=None,
    *,
    iterations: int = 800,
    batch_size: int = 256,
    lr: float = 3e-3,
    hidden: int = 24,
    layers: int = 4,
    seed: int = 0,
    progress: bool = True,
) -> tuple[SeedsGenerator, list[float]]:
    """Train a :class:`SeedsGenerator` on physics ensembles ``(M >= 3, N, L + 1, J)``.

    Each example draws a case, a lead and two distinct members as the seeds; the target is a third member
    (``targets=None``: emulate the ensemble) or ``targets[case, lead]`` (``targets`` ``(N, L + 1, J)``, e.g. the
    truth: the post-processed variant).  Returns the model and the losses."""
    e = check_states(ensembles, "ensembles")
    if e.ndim != 4 or e.shape[0] < 3:
        raise ValueError(f"ensembles must have shape (M >= 3, N, L + 1, J), got {tuple(e.shape)}")
    m, n, leads, j = e.shape
    if targets is not None:
        targets = check_states(targets, "targets", n_variables=j)
        if tuple(targets.shape) != (n, leads, j):
            raise ValueError(
                f"targets must have shape {(n, leads, j)} (cases, leads, variables), got {tuple(targets.shape)}"
            )
    iterations = check_int(iterations, "iterations", minimum=1, maximum=MAX_COUNT)
    batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=MAX_COUNT)
    lr = check_positive(lr, "lr")
    gen = torch.Generator().manual_seed(check_seed(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SeedsGenerator(hidden=hidden, layers=layers, max_lead=max(leads - 1, 1))

    def loss(_step):
        c = torch.randint(0, n, (batch_size,), generator=gen)
        lead = torch.randint(0, leads, (batch_size,), generator=gen)
        pick = torch.rand(batch_size, m, generator=gen).argsort(1)[:, :3]  # three distinct members
        s0, s1 = e[pick[:, 0], c, lead], e[pick[:, 1], c, lead]
        target = e[pick[:, 2], c, lead] if targets is None else targets[c, lead]
        mean = 0.5 * (s0 + s1)
        x1 = (target - mean) / CLIMATE_STD
        x0 = torch.randn(x1.shape, generator=gen)
        t = torch.rand(batch_size, generator=gen)
        xt = (1 - t[:, None]) * x0 + t[:, None] * x1
        v = model.velocity(xt, t, mean, (s0 - s1).abs(), lead.float() / model.max_lead)
        return (v - (x1 - x0)).pow(2).mean()

    desc = "seeds (flow matching, " + ("emulating the ensemble)" if targets is None else "towards the truth)")
    losses = train_loop(model, loss, iterations=iterations, lr=lr, desc=desc, progress=progress)
    return model.eval(), losses
