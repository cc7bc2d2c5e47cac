"""The FuXi-ENS idea at small scale: a generator with noise inputs, trained on CRPS, whose samples are the ensemble.

FuXi-ENS (Zhong et al., 2024) forecasts autoregressively in 6-hour steps; a VAE draws flow-dependent
perturbations at every step, and training minimises the CRPS of the generated ensemble against ERA5 plus a KL
term.  What matters for the ensemble is the loss: a proper score of the ENSEMBLE, so the generator is rewarded
for spreading its members as widely as the truth is uncertain, no more and no less.  Trained on MSE the same
network would learn no spread at all (the :mod:`~ensemble_lab.forecast.emulator`).

Here: ``x' = x + CLIMATE_STD * net([normalise(x), z])`` with ``z ~ N(0, 1)`` drawn afresh at every variable and
every step, so the network decides how much of the noise to pass on, where and when.  Training (our choices,
at this scale): from an analysis (the truth plus the world's observation noise), roll ``members`` samples
forward ``rollout`` lead intervals and minimise the fair CRPS (:func:`~ensemble_lab.forecast.scores.crps_ensemble`,
``fair=True``) against the TRUE states at each of those leads, back-propagating through the roll-out (FuXi-ENS
also fine-tunes on multi-step roll-outs).  It learns from the truth (the "reanalysis"), not from the imperfect
model, so it can correct the model's error.  Differences from FuXi-ENS: no VAE and no KL term (the issue makes
the VAE optional; plain noise inputs are the "generator with noise inputs" of CRPS-trained models such as
Kochkov et al.'s NeuralGCM-ENS), a 1-d ring instead of the sphere, and the analysis error is given by the world
rather than learned.  We found no public training code of FuXi-ENS (the FuXi repository serves ONNX models for
inference), so the recipe follows the paper's text.

>>> import torch
>>> gen = CRPSGenerator(hidden=4, layers=1)       # untrained: persistence
>>> ens = gen.ensemble(torch.zeros(3, 40), n_members=5, n_leads=2, seed=0)
>>> tuple(ens.shape)
(5, 3, 3, 40)
"""

from __future__ import annotations

import torch
from torch import nn

from .._validation import MAX_COUNT, check_in_range, check_int, check_positive, check_seed
from .emulator import check_states
from .networks import CLIMATE_STD, RingNet, macs_per_state, normalise, train_loop
from .scores import crps_ensemble

__all__ = ["CRPSGenerator", "train_crps_generator"]


class CRPSGenerator(nn.Module):
    """One noisy lead interval: ``(x, z) -> x + CLIMATE_STD * net([normalise(x), z])``."""

    def __init__(self, *, hidden: int = 24, layers: int = 4, kernel: int = 5):
        super().__init__()
        self.net = RingNet(2, 1, hidden=hidden, layers=layers, kernel=kernel)

    def step(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat, noise = x.reshape(-1, shape[-1]), z.reshape(-1, shape[-1])
        inp = torch.stack([normalise(flat), noise], 1)
        return (flat + CLIMATE_STD * self.net(inp)[:, 0]).reshape(shape)

    @torch.no_grad()
    def ensemble(self, analysis, n_members: int, n_leads: int, *, seed: int = 0) -> torch.Tensor:
        """``n_members`` roll-outs from the same ``analysis`` ``(N, J)``: ``(M, N, L + 1, J)`` (lead 0 is the
        analysis for every member: all the spread is generated)."""
        a = check_states(analysis, "analysis")
        m = check_int(n_members, "n_members", minimum=1, maximum=100_000)
        n_leads = check_int(n_leads, "n_leads", minimum=0, maximum=MAX_COUNT)
        gen = torch.Generator().manual_seed(check_seed(seed))
        x = a.expand(m, *a.shape).contiguous()
        out = [x]
        for _ in range(n_leads):
            x = self.step(x, torch.randn(x.shape, generator=gen))
            out.append(x)
        return torch.stack(out, -2)

    def macs_per_lead(self, n_variables: int) -> int:
        return macs_per_state(self.net, n_variables)


def train_crps_generator(
    truth_states,
    obs_noise: float,
    *,
    rollout: int = 3,
    members: int = 4,
    batch_size: int = 48,
    iterations: int = 800,
    lr: float = 3e-3,
    hidden: int = 24,
    layers: int = 4,
    seed: int = 0,
    progress: bool = True,
) -> tuple[CRPSGenerator, list[float]]:
    """Train a :class:`CRPSGenerator` on runs of the TRUE system ``(chains, T, J)`` (one lead apart), starting
    each roll-out from the truth plus noise of std ``obs_noise``.  The loss is the fair CRPS, averaged over
    variables, cases and the ``rollout`` leads.  Returns the generator and the losses."""
    s = check_states(truth_states, "truth_states")
    rollout = check_int(rollout, "rollout", minimum=1, maximum=1000)
    if s.ndim != 3 or s.shape[1] < rollout + 1:
        raise ValueError(f"truth_states must have shape (chains, T > rollout, J), got {tuple(s.shape)}")
    obs_noise = check_in_range(obs_noise, "obs_noise", 0.0, 100.0)
    members = check_int(members, "members", minimum=2, maximum=10_000)
    batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=MAX_COUNT)
    iterations = check_int(iterations, "iterations", minimum=1, maximum=MAX_COUNT)
    lr = check_positive(lr, "lr")
    gen = torch.Generator().manual_seed(check_seed(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CRPSGenerator(hidden=hidden, layers=layers)
    chains, t_len, j = s.shape
    offsets = torch.arange(rollout + 1)

    def loss(_step):
        c = torch.randint(0, chains, (batch_size,), generator=gen)
        t0 = torch.randint(0, t_len - rollout, (batch_size,), generator=gen)
        truth = s[c[:, None], t0[:, None] + offsets]  # (B, rollout + 1, J)
        x = truth[:, 0] + obs_noise * torch.randn(batch_size, j, generator=gen)
        x = x.expand(members, batch_size, j)
        total = 0.0
        for k in range(1, rollout + 1):
            x = model.step(x, torch.randn(x.shape, generator=gen))
            total = total + crps_ensemble(x, truth[:, k], fair=True, validate=False).mean()
        return total / rollout

    losses = train_loop(model, loss, iterations=iterations, lr=lr, desc="generator (CRPS)", progress=progress)
    return model.eval(), losses
