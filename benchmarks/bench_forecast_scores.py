"""Ensemble scores (ensemble_lab.forecast.scores): the fair CRPS of 10,000 forecasts x 50 members and the energy
score of 1,000 forecasts x 50 members x J = 40 variables (a Lorenz-96 state), float64.

Side by side in one run:

- ours: :func:`crps_ensemble` (``fair=True``; torch, one sort along the members, then a weighted sum of the sorted
  gaps) and :func:`energy_score` (``fair=True``; blocked ``torch.cdist`` without the matrix-product shortcut);
- scoringrules with the numpy backend (``estimator="fair"``), and with the numba backend where numba imports;
- properscoring's ``crps_ensemble`` (the STANDARD estimator only: it has no fair one; compared with ours
  ``fair=False``);
- the floor: the bare sort of the ``(50, 10000)`` tensor plus one weighted sum over the members (the least work a
  sort-based CRPS can do); for the energy score the bare ``cdist`` of the ``(1000, 50, 40)`` block.

Every implementation's values are compared with ours (max abs difference printed).  One torch thread (numpy and
numba use one too), so the ratios compare algorithms rather than core counts.
"""

from __future__ import annotations

import os

import numpy as np
import properscoring as ps
import scoringrules as sr
import torch

from benchmarks._timing import median, time_calls
from ensemble_lab.forecast.scores import crps_ensemble, energy_score

M, N = 50, 10_000
N_ES, J = 1_000, 40


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centre = torch.randn(N, generator=g, dtype=torch.float64) * 3
    x = centre + torch.randn(M, N, generator=g, dtype=torch.float64)
    y = centre + torch.randn(N, generator=g, dtype=torch.float64)
    xs = torch.randn(M, N_ES, J, generator=g, dtype=torch.float64)
    ys = torch.randn(N_ES, J, generator=g, dtype=torch.float64)
    return x, y, xs, ys


def _numba_ok() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _floor_crps(x, weights):
    s = torch.sort(x, dim=0).values
    return weights @ s


def _floor_es(xt):
    return torch.cdist(xt, xt, compute_mode="donot_use_mm_for_euclid_dist").sum(dim=(1, 2))


def _row(name, t, ref, diff, note=""):
    """A table row; ``ref`` is the time of ours that this row is compared with (None: it is that row)."""
    ratio = "1" if ref is None else f"{t / ref:.2f}"
    d = "-" if diff is None else f"{diff:.1e}"
    return f"| {name} | {1e3 * t:.1f} ms | {ratio} | {d} | {note} |"


def main() -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _main()
    finally:
        torch.set_num_threads(threads)


def _main() -> str:
    load = os.getloadavg()[0]
    x, y, xs, ys = _data()
    xn, yn = x.numpy(), y.numpy()
    numba = _numba_ok()

    # ---- CRPS
    ours = crps_ensemble(x, y, fair=True)
    ours_std = crps_ensemble(x, y)
    t_ours = median(time_calls(lambda: crps_ensemble(x, y, fair=True), repeat=9))
    t_ours_std = median(time_calls(lambda: crps_ensemble(x, y), repeat=9))
    k = torch.arange(1, M + 1, dtype=torch.float64)
    weights = (2 * k - M - 1) / (M * (M - 1))
    t_floor = median(time_calls(lambda: _floor_crps(x, weights), repeat=9))
    crps_rows = [("ours (fair)", t_ours, None, None, "")]
    want = sr.crps_ensemble(yn, xn, m_axis=0, estimator="fair", backend="numpy")
    t_sr = median(time_calls(lambda: sr.crps_ensemble(yn, xn, m_axis=0, estimator="fair", backend="numpy"), repeat=5))
    crps_rows.append(("scoringrules, numpy (fair)", t_sr, t_ours, float(np.abs(want - ours.numpy()).max()), ""))
    if numba:
        want = sr.crps_ensemble(yn, xn, m_axis=0, estimator="fair", backend="numba")
        t_nb = median(
            time_calls(lambda: sr.crps_ensemble(yn, xn, m_axis=0, estimator="fair", backend="numba"), repeat=5)
        )
        crps_rows.append(("scoringrules, numba (fair)", t_nb, t_ours, float(np.abs(want - ours.numpy()).max()), ""))
    xt_np = np.ascontiguousarray(xn.T)
    want = ps.crps_ensemble(yn, xt_np)
    t_ps = median(time_calls(lambda: ps.crps_ensemble(yn, xt_np), repeat=5))
    crps_rows.append(("ours (standard)", t_ours_std, None, None, "the reference of the next row"))
    crps_rows.append(
        (
            "properscoring (STANDARD estimator)",
            t_ps,
            t_ours_std,
            float(np.abs(want - ours_std.numpy()).max()),
            "no fair estimator; vs ours standard",
        )
    )
    crps_rows.append(("floor: sort + one weighted sum", t_floor, t_ours, None, "no mean abs error term"))

    # ---- energy score
    es = energy_score(xs, ys, fair=True)
    t_es = median(time_calls(lambda: energy_score(xs, ys, fair=True), repeat=5))
    xsn, ysn = xs.numpy(), ys.numpy()
    want = sr.es_ensemble(ysn, xsn, m_axis=0, v_axis=-1, estimator="fair", backend="numpy")
    t_es_sr = median(
        time_calls(lambda: sr.es_ensemble(ysn, xsn, m_axis=0, v_axis=-1, estimator="fair", backend="numpy"), repeat=3)
    )
    es_rows = [
        ("ours (fair)", t_es, None, None, ""),
        ("scoringrules, numpy (fair)", t_es_sr, t_es, float(np.abs(want - es.numpy()).max()), ""),
    ]
    if numba:
        want = sr.es_ensemble(ysn, xsn, m_axis=0, v_axis=-1, estimator="fair", backend="numba")
        t_es_nb = median(
            time_calls(
                lambda: sr.es_ensemble(ysn, xsn, m_axis=0, v_axis=-1, estimator="fair", backend="numba"), repeat=3
            )
        )
        es_rows.append(("scoringrules, numba (fair)", t_es_nb, t_es, float(np.abs(want - es.numpy()).max()), ""))
    xt = xs.transpose(0, 1).contiguous()
    t_es_floor = median(time_calls(lambda: _floor_es(xt), repeat=5))
    es_rows.append(("floor: the bare cdist of the block", t_es_floor, t_es, None, "pairwise term only"))

    for name, t, _, d, _ in crps_rows + es_rows:
        print(name, f"{1e3 * t:.1f} ms", "" if d is None else f"max abs diff {d:.1e}")

    head = "| implementation | median | time / ours | max abs diff vs ours | note |\n|---|---|---|---|---|"
    lines = [
        f"## Forecast scores: fair CRPS of N = {N // 1000}k forecasts x M = {M} members; energy score of "
        f"{N_ES // 1000}k x {M} x J = {J}",
        "",
        "float64 throughout, one torch thread.  `crps_ensemble(fair=True)` sorts the members once and takes a "
        'weighted sum of the sorted gaps (O(M log M) per point); scoringrules (numpy backend, `estimator="fair"`) '
        "builds the M x M pairwise differences; properscoring has only the standard estimator (compared with ours "
        "`fair=False`).  The floor is the bare sort of the (50, 10000) tensor plus one weighted sum.  "
        f"numba {'imports: its backend is timed too' if numba else 'is not installed here: no numba rows'}.  "
        f"Medians of 9 (ours, floor) or 3-5 (the others).  1-min load average at start: {load:.2f} (other jobs "
        "shared the cores).",
        "",
        "### Fair CRPS, 10,000 x 50",
        "",
        head,
        *(_row(*r) for r in crps_rows),
        "",
        f"### Fair energy score, {N_ES:,} x {M} x {J}",
        "",
        head,
        *(_row(*r) for r in es_rows),
        "",
        "time / ours: the row's median over ours (above 1: ours is faster; properscoring is compared with ours "
        "standard); for the floor rows, the share of ours that is the unavoidable sort (or pairwise distances).  "
        "Max abs differences are in the variable's units.",
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
