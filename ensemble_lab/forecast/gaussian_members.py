"""Deep-ensemble regression (the regression half of Lakshminarayanan, Pritzel and Blundell, NeurIPS 2017):
members that predict a mean and a variance, combined as an equal-weight Gaussian mixture.

Each member is trained on the Gaussian negative log-likelihood ``0.5 log s^2 + (y - mu)^2 / (2 s^2)``, so it
says how uncertain it is (aleatoric); the members differ by their random initialisation and data order, so
their disagreement measures what the training could not pin down (epistemic).  The ensemble's predictive
distribution is the MIXTURE ``1/K sum_k N(mu_k, s_k^2)``, with mean ``mu*`` = the members' mean and variance
``mean_k (s_k^2 + mu_k^2) - mu*^2`` (the paper's eq. for regression); its CRPS has a closed form
(:func:`~ensemble_lab.forecast.scores.crps_gaussian_mixture`).  The paper also trains with adversarial
examples; we do not (it helped little in their regression results).

Here the members turn a DETERMINISTIC forecast into a probabilistic one (neural post-processing, as Rasp and
Lerch 2018 do for ensemble forecasts with a network predicting a mean and a std): a member reads the
deterministic forecast at one lead (normalised) and the lead (as a fraction of the longest) and predicts the
mean and the standard deviation of the TRUTH at every variable.  The course feeds it the roll-out of the
:mod:`~ensemble_lab.forecast.emulator` (so the whole forecaster is learned, and it learns the model error and
the growth of the initial-condition error from the truth).  We first tried members that forecast directly from
the analysis to every lead: at this size and training budget their CRPS was far worse than the physics
ensemble's already at one day (0.49-0.63 against 0.37), because one small network had to learn the flow map
for every lead.  The K members are one grouped :class:`~ensemble_lab.forecast.networks.RingNet`, each fed its
own random batch (its own data order).  The standard deviation is ``0.1 * CLIMATE_STD * softplus(raw + 1) +
1e-3``, so it is positive, never exactly 0, and starts near 0.47.

>>> import torch
>>> model = GaussianMembers(members=3, hidden=4, layers=1)
>>> mu, sd = model.predict(torch.zeros(2, 5, 40))      # a deterministic forecast (N, L + 1, J)
>>> tuple(mu.shape), bool((sd > 0).all())
((3, 2, 5, 40), True)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import MAX_COUNT, check_int, check_positive, check_seed
from .emulator import check_states
from .networks import CLIMATE_STD, RingNet, macs_per_state, normalise, train_loop

__all__ = ["GaussianMembers", "train_gaussian_members", "mixture_moments", "sample_mixture"]

_MIN_STD = 1e-3


class GaussianMembers(nn.Module):
    """K members ``(deterministic forecast at a lead, lead) -> (mean, std)`` of the truth, as one grouped network."""

    def __init__(self, *, members: int = 5, hidden: int = 24, layers: int = 4, kernel: int = 5, max_lead: int = 10):
        super().__init__()
        self.k = check_int(members, "members", minimum=1, maximum=1024)
        self.net = RingNet(2, 2, hidden=hidden, layers=layers, kernel=kernel, members=self.k)
        self.max_lead = check_int(max_lead, "max_lead", minimum=1, maximum=MAX_COUNT)

    def forward_members(self, x: torch.Tensor, lead_fraction: torch.Tensor):
        """``x`` ``(K, B, J)`` (each member its own batch), ``lead_fraction`` ``(K, B)`` -> mean, std ``(K, B, J)``."""
        k, b, j = x.shape
        inp = torch.stack([normalise(x), lead_fraction[..., None].expand(k, b, j)], 2)  # (K, B, 2, J)
        out = self.net(inp.permute(1, 0, 2, 3).reshape(b, k * 2, j)).reshape(b, k, 2, j).permute(1, 0, 2, 3)
        mean = x + CLIMATE_STD * out[:, :, 0]
        std = F.softplus(out[:, :, 1] + 1.0) * CLIMATE_STD * 0.1 + _MIN_STD
        return mean, std

    @torch.no_grad()
    def predict(self, forecast) -> tuple[torch.Tensor, torch.Tensor]:
        """Every member's mean and std of the truth from a deterministic ``forecast`` ``(N, L + 1, J)``: two
        ``(K, N, L + 1, J)`` tensors (lead ``l`` is read as the fraction ``l / max_lead``)."""
        f = check_states(forecast, "forecast")
        if f.ndim != 3:
            raise ValueError(f"forecast must have shape (N, L + 1, J), got {tuple(f.shape)}")
        n, leads, j = f.shape
        lf = (torch.arange(leads, dtype=torch.float32) / self.max_lead).expand(n, leads).reshape(-1)
        x = f.reshape(-1, j)
        mean, std = self.forward_members(x.expand(self.k, *x.shape), lf.expand(self.k, -1))
        return mean.reshape(self.k, n, leads, j), std.reshape(self.k, n, leads, j)

    def macs_per_lead(self, n_variables: int) -> int:
        """Multiply-accumulates of all K members at one lead (one direct prediction)."""
        return macs_per_state(self.net, n_variables)


def mixture_moments(means: torch.Tensor, stds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the equal-weight mixture of ``(K, ...)`` Gaussians: two ``(...)`` tensors."""
    mu = means.mean(0)
    var = (stds.pow(2) + means.pow(2)).mean(0) - mu.pow(2)
    return mu, var.clamp_min(0).sqrt()


def sample_mixture(means: torch.Tensor, stds: torch.Tensor, n_samples: int, *, seed: int = 0) -> torch.Tensor:
    """``n_samples`` draws ``(S, ...)`` from the equal-weight mixture: sample ``s`` uses member ``s mod K``
    (stratified over the members, so S = K draws one from each) and independent Gaussian noise."""
    n_samples = check_int(n_samples, "n_samples", minimum=1, maximum=100_000)
    gen = torch.Generator().manual_seed(check_seed(seed))
    k = means.shape[0]
    which = torch.arange(n_samples) % k
    noise = torch.randn((n_samples, *means.shape[1:]), generator=gen, dtype=means.dtype)
    return means[which] + stds[which] * noise


def train_gaussian_members(
    forecasts,
    truth,
    *,
    members: int = 5,
    iterations: int = 800,
    batch_size: int = 64,
    lr: float = 3e-3,
    hidden: int = 24,
    layers: int = 4,
    seed: int = 0,
    progress: bool = True,
) -> tuple[GaussianMembers, list[float]]:
    """Train :class:`GaussianMembers` on deterministic ``forecasts`` and the ``truth``, both ``(N, L + 1, J)``,
    with the Gaussian NLL (per variable, in nats); each step every member draws its own batch of ``batch_size``
    (case, lead) pairs.  Returns the model and the losses (the members' mean NLL)."""
    f = check_states(forecasts, "forecasts")
    y = check_states(truth, "truth")
    if f.ndim != 3 or tuple(y.shape) != tuple(f.shape):
        raise ValueError(
            f"forecasts and truth must both have shape (N, L + 1, J), got {tuple(f.shape)} and {tuple(y.shape)}"
        )
    members = check_int(members, "members", minimum=1, maximum=1024)
    iterations = check_int(iterations, "iterations", minimum=1, maximum=MAX_COUNT)
    batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=MAX_COUNT)
    lr = check_positive(lr, "lr")
    gen = torch.Generator().manual_seed(check_seed(seed))
    n, leads, _ = y.shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GaussianMembers(members=members, hidden=hidden, layers=layers, max_lead=max(leads - 1, 1))
    half_log_2pi = 0.5 * math.log(2 * math.pi)

    def loss(_step):
        c = torch.randint(0, n, (members, batch_size), generator=gen)
        lead = torch.randint(0, leads, (members, batch_size), generator=gen)
        mean, std = model.forward_members(f[c, lead], lead.float() / model.max_lead)
        nll = torch.log(std) + 0.5 * ((y[c, lead] - mean) / std).pow(2) + half_log_2pi
        return nll.mean() * members  # each member's own mean NLL, summed: each gets exactly its own gradient

    losses = train_loop(model, loss, iterations=iterations, lr=lr, desc="Gaussian members (NLL)", progress=progress)
    return model.eval(), [v / members for v in losses]
