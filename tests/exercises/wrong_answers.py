"""Typical wrong answers to every exercise, each with the parts its verdict's message must contain (the case it
fails on, and what differs).  Used by test_wrong_answers.py; one entry per mistake a learner makes."""

from __future__ import annotations

import math

import torch

# ----------------------------------------------------------------------------------------------------------
# 01.1 the weighted probability average
# ----------------------------------------------------------------------------------------------------------


def avg_not_normalised(member_probs, weights):
    return (weights[:, None, None] * member_probs).sum(dim=0)


def avg_wrong_axis(member_probs, weights):
    w = weights / weights.sum()
    return (w[:, None, None] * member_probs).sum(dim=1)


def avg_ignores_weights(member_probs, weights):
    return member_probs.mean(dim=0)


def avg_softmax_weights(member_probs, weights):
    w = torch.softmax(weights, dim=0)
    return (w[:, None, None] * member_probs).sum(dim=0)


def avg_clamps_zero_weight(member_probs, weights):
    w = weights.clamp(min=0.1)  # "avoid a zero weight": it is not zero any more
    w = w / w.sum()
    return (w[:, None, None] * member_probs).sum(dim=0)


def avg_in_place(member_probs, weights):
    weights /= weights.sum()  # changes the caller's tensor
    return (weights[:, None, None] * member_probs).sum(dim=0)


# ----------------------------------------------------------------------------------------------------------
# 01.2 NLL
# ----------------------------------------------------------------------------------------------------------


def nll_sum(probs, labels):
    return float(-torch.log(probs[torch.arange(len(labels)), labels]).sum())


def nll_of_max(probs, labels):
    return float(-torch.log(probs.max(dim=1).values).mean())


def nll_wrong_index(probs, labels):
    return float(-torch.log(probs[:, labels]).mean())


def nll_no_minus(probs, labels):
    return float(torch.log(probs[torch.arange(len(labels)), labels]).mean())


def nll_log10(probs, labels):
    return float(-torch.log10(probs[torch.arange(len(labels)), labels]).mean())


def nll_per_sample(probs, labels):
    return -torch.log(probs[torch.arange(len(labels)), labels])


# ----------------------------------------------------------------------------------------------------------
# 01.3 mutual information
# ----------------------------------------------------------------------------------------------------------


def _h(p, dim=-1):
    return -torch.where(p > 0, p * torch.log(p), torch.zeros_like(p)).sum(dim=dim)


def mi_entropy_of_mean(member_probs):
    return _h(member_probs.mean(dim=0))


def mi_sign_swapped(member_probs):
    return _h(member_probs).mean(dim=0) - _h(member_probs.mean(dim=0))


def mi_zero_log_zero(member_probs):
    def h(p):
        return -(p * torch.log(p)).sum(dim=-1)

    return h(member_probs.mean(dim=0)) - h(member_probs).mean(dim=0)


def mi_mean_over_images(member_probs):
    return float((_h(member_probs.mean(dim=0)) - _h(member_probs).mean(dim=0)).mean())


def mi_wrong_axis(member_probs):
    return _h(member_probs.mean(dim=0), dim=0) - _h(member_probs, dim=0).mean(dim=0)


def mi_log2(member_probs):
    return (_h(member_probs.mean(dim=0)) - _h(member_probs).mean(dim=0)) / math.log(2)


# ----------------------------------------------------------------------------------------------------------
# 01.4 geometric pooling
# ----------------------------------------------------------------------------------------------------------


def geo_softmax_wrong_axis(member_probs, weights):
    return torch.softmax((weights[:, None, None] * torch.log(member_probs)).sum(dim=0), dim=0)


def geo_not_renormalised(member_probs, weights):
    return torch.exp((weights[:, None, None] * torch.log(member_probs)).sum(dim=0))


def geo_arithmetic(member_probs, weights):
    return (weights[:, None, None] * member_probs).sum(dim=0)


def geo_ignores_weights(member_probs, weights):
    return torch.softmax(torch.log(member_probs).mean(dim=0), dim=-1)


# ----------------------------------------------------------------------------------------------------------
# 02.1 ECE
# ----------------------------------------------------------------------------------------------------------


def _ece(probs, labels, n_bins, *, edges=None, closed_low=False, weighted=True, overall=False, conf=None):
    c, pred = probs.max(dim=1)
    if conf is not None:
        c = conf(probs)
    correct = (pred == labels).double()
    e = torch.arange(n_bins + 1, dtype=torch.float64) / n_bins if edges is None else edges(n_bins)
    gaps, shares = [], []
    for b in range(len(e) - 1):
        if closed_low:
            in_bin = (c >= e[b]) & (c < e[b + 1]) if b < len(e) - 2 else (c >= e[b])
        else:
            in_bin = (c > e[b]) & (c <= e[b + 1]) if b > 0 else (c <= e[b + 1])
        if in_bin.any():
            acc = correct.mean() if overall else correct[in_bin].mean()
            gaps.append(float((acc - c[in_bin].mean()).abs()))
            shares.append(float(in_bin.double().mean()))
    if weighted:
        return sum(g * s for g, s in zip(gaps, shares, strict=True))
    return sum(gaps) / len(gaps)


def ece_half_open_low(probs, labels, n_bins):
    return _ece(probs, labels, n_bins, closed_low=True)


def ece_bins_off_by_one(probs, labels, n_bins):
    return _ece(probs, labels, n_bins, edges=lambda b: torch.linspace(0, 1, b, dtype=torch.float64))


def ece_unweighted(probs, labels, n_bins):
    return _ece(probs, labels, n_bins, weighted=False)


def ece_overall_accuracy(probs, labels, n_bins):
    return _ece(probs, labels, n_bins, overall=True)


def ece_class0_confidence(probs, labels, n_bins):
    return _ece(probs, labels, n_bins, conf=lambda p: p[:, 0])


def ece_nan_empty_bins(probs, labels, n_bins):
    conf, pred = probs.max(dim=1)
    correct = (pred == labels).double()
    bins = torch.clamp(torch.ceil(conf * n_bins) - 1, 0, n_bins - 1).long()
    total = torch.zeros((), dtype=torch.float64)
    for b in range(n_bins):
        m = bins == b
        total = total + m.double().mean() * (correct[m].mean() - conf[m].mean()).abs()  # nan for an empty bin
    return float(total)


# ----------------------------------------------------------------------------------------------------------
# 02.2 temperature
# ----------------------------------------------------------------------------------------------------------


def _grid_fit(logits, labels, temperatures, divide=True):
    t = temperatures.double()[:, None, None]
    log_p = torch.log_softmax(logits.double() / t if divide else logits.double() * t, dim=-1)
    nlls = -log_p[:, torch.arange(len(labels)), labels].mean(dim=1)
    return float(temperatures[int(nlls.argmin())])


def t_multiplies(logits, labels):
    return _grid_fit(logits, labels, torch.logspace(-2, 2, 401, dtype=torch.float64), divide=False)


def t_always_one(logits, labels):
    return 1.0


def t_coarse_grid(logits, labels):
    return _grid_fit(logits, labels, torch.tensor([0.5, 1.0, 2.0, 4.0]))


def t_returns_log(logits, labels):
    return math.log(_grid_fit(logits, labels, torch.logspace(-2, 2, 401, dtype=torch.float64)))


def t_narrow_grid(logits, labels):
    return _grid_fit(logits, labels, torch.logspace(-0.5, 0.5, 201, dtype=torch.float64))  # 0.32 ... 3.2


# ----------------------------------------------------------------------------------------------------------
# 03.1 ZPE scores
# ----------------------------------------------------------------------------------------------------------


def zpe_no_debias(logits, pretrain_logits):
    return logits.amax(dim=2).mean(dim=0)


def zpe_test_only(logits, pretrain_logits):
    return (logits - logits.mean(dim=0)).amax(dim=2).mean(dim=0)


def zpe_pretrain_only(logits, pretrain_logits):
    return (logits - pretrain_logits.mean(dim=0)).amax(dim=2).mean(dim=0)


def zpe_pooled_mean(logits, pretrain_logits):
    bias = torch.cat([logits, pretrain_logits]).mean(dim=0)
    return (logits - bias).amax(dim=2).mean(dim=0)


def zpe_max_over_prompts(logits, pretrain_logits):
    bias = (pretrain_logits.mean(dim=0) + logits.mean(dim=0)) / 2
    return (logits - bias).amax(dim=1).mean(dim=0)


def zpe_mean_then_max(logits, pretrain_logits):
    bias = (pretrain_logits.mean(dim=0) + logits.mean(dim=0)) / 2
    return (logits - bias).mean(dim=0).amax(dim=1)


# ----------------------------------------------------------------------------------------------------------
# 03.2 ZPE weights
# ----------------------------------------------------------------------------------------------------------


def zw_no_temperature(scores, temperature):
    return torch.softmax(scores, dim=0)


def zw_normalised_by_sum(scores, temperature):
    return scores / scores.sum()


def zw_multiplies(scores, temperature):
    return torch.softmax(scores * temperature, dim=0)


def zw_naive_exp(scores, temperature):
    e = torch.exp(scores / temperature)
    return e / e.sum()


# ----------------------------------------------------------------------------------------------------------
# 04.1 the window
# ----------------------------------------------------------------------------------------------------------


def _window(val_scores, tau, q, *, strict=False, clamp=False, rounding=math.ceil):
    s = torch.sort(val_scores.double()).values
    m = len(s)
    u = float((s < tau).sum() if strict else (s <= tau).sum()) / m

    def quantile(p):
        if p <= 0:
            return float(s[0]) if clamp else -math.inf
        if p >= 1:
            return float(s[-1]) if clamp else math.inf
        return float(s[max(rounding(p * m) - 1, 0)])

    return quantile(u - q), quantile(u + q)


def win_torch_quantile(val_scores, tau, q):
    u = float((val_scores <= tau).double().mean())
    lo, hi = torch.quantile(val_scores.double(), torch.tensor([max(u - q, 0.0), min(u + q, 1.0)], dtype=torch.float64))
    return float(lo), float(hi)


def win_strict_level(val_scores, tau, q):
    return _window(val_scores, tau, q, strict=True)


def win_clamped(val_scores, tau, q):
    return _window(val_scores, tau, q, clamp=True)


def win_round(val_scores, tau, q):
    return _window(val_scores, tau, q, rounding=round)


def win_swapped(val_scores, tau, q):
    lo, hi = _window(val_scores, tau, q)
    return hi, lo


# ----------------------------------------------------------------------------------------------------------
# 04.2 passed on
# ----------------------------------------------------------------------------------------------------------


def pass_closed(scores, lo, hi):
    return (lo <= scores) & (scores <= hi)


def pass_half_open(scores, lo, hi):
    return (lo <= scores) & (scores < hi)


def pass_outside(scores, lo, hi):
    return (scores <= lo) | (scores >= hi)


def pass_chained(scores, lo, hi):
    return lo < scores < hi  # python's chained comparison asks bool() of a whole tensor


def pass_indices(scores, lo, hi):
    return ((lo < scores) & (scores < hi)).nonzero().flatten()


# ----------------------------------------------------------------------------------------------------------
# 05.1 WiSE-FT
# ----------------------------------------------------------------------------------------------------------


def wise_swapped(a, b, alpha):
    return {k: alpha * a[k] + (1 - alpha) * b[k] if a[k].is_floating_point() else a[k].clone() for k in a}


def wise_averages_counter(a, b, alpha):
    return {k: (1 - alpha) * a[k] + alpha * b[k] for k in a}


def wise_in_place(a, b, alpha):
    for k in a:
        a[k].mul_(1 - alpha).add_(b[k], alpha=alpha)
    return a


def wise_drops_keys(a, b, alpha):
    return {k: (1 - alpha) * a[k] + alpha * b[k] for k in a if k.endswith("weight")}


def wise_task_vector(a, b, alpha):
    return {k: alpha * (b[k] - a[k]) for k in a}


# ----------------------------------------------------------------------------------------------------------
# 05.2 greedy soup
# ----------------------------------------------------------------------------------------------------------


def _greedy(states, evaluate, *, rule=lambda s, best: s > best, order="best", against_own=False):
    def soup(indices):
        return {k: sum(states[i][k] for i in indices) / len(indices) for k in states[0]}

    own = [evaluate(s) for s in states]
    idx = list(range(len(states)))
    if order == "best":
        idx = sorted(idx, key=lambda i: -own[i])
    elif order == "worst":
        idx = sorted(idx, key=lambda i: own[i])
    kept, best = [idx[0]], own[idx[0]]
    for i in idx[1:]:
        score = own[i] if against_own else evaluate(soup(kept + [i]))
        if rule(score, best):
            kept, best = kept + [i], score
    return kept


def soup_non_strict(states, evaluate):
    return _greedy(states, evaluate, rule=lambda s, best: s >= best)


def soup_unsorted(states, evaluate):
    return _greedy(states, evaluate, order="input")


def soup_worst_first(states, evaluate):
    return _greedy(states, evaluate, order="worst")


def soup_own_score(states, evaluate):
    return _greedy(states, evaluate, against_own=True)


def soup_running_average(states, evaluate):
    """Averages each candidate with the current soup, (soup + candidate) / 2, instead of all kept uniformly."""
    own = [evaluate(s) for s in states]
    idx = sorted(range(len(states)), key=lambda i: -own[i])
    kept, best, current = [idx[0]], own[idx[0]], dict(states[idx[0]])
    for i in idx[1:]:
        candidate = {k: (current[k] + states[i][k]) / 2 for k in current}
        score = evaluate(candidate)
        if score > best:
            kept, best, current = kept + [i], score, candidate
    return kept


def soup_keeps_all(states, evaluate):
    return list(range(len(states)))


def soup_returns_dict(states, evaluate):
    return {k: sum(s[k] for s in states) / len(states) for k in states[0]}


# ----------------------------------------------------------------------------------------------------------
# 06.1 forward selection with replacement
# ----------------------------------------------------------------------------------------------------------


def _onehot(labels, member_probs):
    return torch.nn.functional.one_hot(labels, member_probs.shape[-1]).to(member_probs.dtype)


def fs_without_replacement(member_probs, labels, steps):
    onehot, total, chosen = _onehot(labels, member_probs), torch.zeros_like(member_probs[0]), []
    for n in range(1, steps + 1):
        brier = (((total + member_probs) / n - onehot) ** 2).sum(-1).mean(-1)
        if len(chosen) < len(member_probs):
            brier[chosen] = math.inf  # "each model at most once"
        best = int(brier.argmin())
        chosen.append(best)
        total = total + member_probs[best]
    return chosen


def fs_ties_to_highest(member_probs, labels, steps):
    onehot, total, chosen = _onehot(labels, member_probs), torch.zeros_like(member_probs[0]), []
    k = len(member_probs)
    for n in range(1, steps + 1):
        brier = (((total + member_probs) / n - onehot) ** 2).sum(-1).mean(-1)
        best = k - 1 - int(brier.flip(0).argmin())  # the LAST minimum
        chosen.append(best)
        total = total + member_probs[best]
    return chosen


def fs_nll(member_probs, labels, steps):
    total, chosen = torch.zeros_like(member_probs[0]), []
    for n in range(1, steps + 1):
        ens = (total + member_probs) / n
        nll = -torch.log(ens[:, torch.arange(len(labels)), labels]).mean(-1)
        best = int(nll.argmin())
        chosen.append(best)
        total = total + member_probs[best]
    return chosen


def fs_counts(member_probs, labels, steps):
    chosen = [int(i) for i in _reference("06.1")(member_probs, labels, steps)]
    return torch.bincount(torch.tensor(chosen), minlength=len(member_probs)).tolist()


def fs_one_step_short(member_probs, labels, steps):
    return _reference("06.1")(member_probs, labels, steps - 1) if steps > 1 else []


def fs_sum_not_average(member_probs, labels, steps):
    onehot, total, chosen = _onehot(labels, member_probs), torch.zeros_like(member_probs[0]), []
    for _ in range(steps):
        brier = ((total + member_probs - onehot) ** 2).sum(-1).mean(-1)  # the SUM of the chosen, not their mean
        best = int(brier.argmin())
        chosen.append(best)
        total = total + member_probs[best]
    return chosen


def fs_running_average(member_probs, labels, steps):
    onehot, ens, chosen = _onehot(labels, member_probs), None, []
    for _ in range(steps):
        cand = member_probs if ens is None else (ens + member_probs) / 2  # halves the older models each step
        best = int((((cand - onehot) ** 2).sum(-1).mean(-1)).argmin())
        chosen.append(best)
        ens = cand[best]
    return chosen


# ----------------------------------------------------------------------------------------------------------
# 06.2 the ambiguity decomposition
# ----------------------------------------------------------------------------------------------------------


def _brier(p, onehot):
    return float(((p - onehot) ** 2).sum(-1).mean())


def amb_around_label(member_probs, labels):
    onehot, pbar = _onehot(labels, member_probs), member_probs.mean(0)
    mean_member = sum(_brier(p, onehot) for p in member_probs) / len(member_probs)
    ambiguity = float(((member_probs - onehot) ** 2).sum(-1).mean())  # around the label, not the ensemble
    return mean_member, ambiguity, _brier(pbar, onehot)


def amb_brier_mean_over_classes(member_probs, labels):
    onehot, pbar = _onehot(labels, member_probs), member_probs.mean(0)

    def brier(p):  # averaged over the classes too
        return float(((p - onehot) ** 2).mean())

    mean_member = sum(brier(p) for p in member_probs) / len(member_probs)
    return mean_member, float(((member_probs - pbar) ** 2).mean()), brier(pbar)


def amb_not_divided_by_k(member_probs, labels):
    onehot, pbar = _onehot(labels, member_probs), member_probs.mean(0)
    mean_member = sum(_brier(p, onehot) for p in member_probs) / len(member_probs)
    ambiguity = float(((member_probs - pbar) ** 2).sum(-1).sum(0).mean())  # summed over the members
    return mean_member, ambiguity, _brier(pbar, onehot)


def amb_other_order(member_probs, labels):
    mean_member, ambiguity, ensemble = _reference("06.2")(member_probs, labels)
    return ensemble, mean_member, ambiguity


def amb_mean_member_as_ensemble(member_probs, labels):
    mean_member, ambiguity, _ = _reference("06.2")(member_probs, labels)
    return mean_member, ambiguity, mean_member  # "the ensemble's Brier": the members' Briers averaged


def amb_returns_per_sample(member_probs, labels):
    onehot, pbar = _onehot(labels, member_probs), member_probs.mean(0)
    return ((member_probs - pbar) ** 2).sum(-1).mean(0), ((pbar - onehot) ** 2).sum(-1)


# ----------------------------------------------------------------------------------------------------------
# 07.1 the fair CRPS
# ----------------------------------------------------------------------------------------------------------


def _skill_and_pairs(members, observations):
    skill = (members - observations).abs().mean(dim=0)
    pairs = (members[:, None] - members[None]).abs().sum(dim=(0, 1))  # over all ordered pairs (i, j)
    return skill, pairs


def crps_standard(members, observations):
    m = members.shape[0]
    skill, pairs = _skill_and_pairs(members, observations)
    return skill - pairs / (2 * m * m)  # the standard CRPS


def crps_no_half(members, observations):
    m = members.shape[0]
    skill, pairs = _skill_and_pairs(members, observations)
    return skill - pairs / (m * (m - 1))  # forgets the 1/2


def crps_pairs_once(members, observations):
    m = members.shape[0]
    skill, pairs = _skill_and_pairs(members, observations)
    return skill - (pairs / 2) / (2 * m * (m - 1))  # each unordered pair counted once (i < j only)


def crps_skill_only(members, observations):
    return (members - observations).abs().mean(dim=0)  # no spread term


def crps_mean_over_points(members, observations):
    m = members.shape[0]
    skill, pairs = _skill_and_pairs(members, observations)
    return float((skill - pairs / (2 * m * (m - 1))).mean())  # one number for the whole forecast


def crps_wrong_axis(members, observations):
    m = members.shape[0]
    skill = (members - observations).abs().mean(dim=1)  # averages over the points, not the members
    pairs = (members[:, None] - members[None]).abs().sum(dim=(1, 2))
    return skill - pairs / (2 * m * (m - 1))


# ----------------------------------------------------------------------------------------------------------
# 07.2 the rank histogram
# ----------------------------------------------------------------------------------------------------------


def _ranks(members, observations):
    return (members < observations).sum(dim=0)


def rh_counts_above(members, observations):
    ranks = (members > observations).sum(dim=0)  # the members ABOVE each observation
    return torch.bincount(ranks, minlength=members.shape[0] + 1)


def rh_no_minlength(members, observations):
    return torch.bincount(_ranks(members, observations))  # max(rank) + 1 bins only


def rh_m_bins(members, observations):
    ranks = _ranks(members, observations)
    return torch.stack([(ranks == k).sum() for k in range(members.shape[0])])  # ranks 0 .. M - 1 only


def rh_ranks(members, observations):
    return _ranks(members, observations)  # the rank of every point, not the histogram


def rh_frequencies(members, observations):
    counts = torch.bincount(_ranks(members, observations), minlength=members.shape[0] + 1)
    return counts / counts.sum()  # normalised


def rh_wrong_axis(members, observations):
    return torch.bincount((members < observations).sum(dim=1), minlength=members.shape[0] + 1)


# ----------------------------------------------------------------------------------------------------------
# 08.1 the smoother weights of one tree
# ----------------------------------------------------------------------------------------------------------


def _same_leaf(train_leaves, query_leaves):
    return (query_leaves[:, None] == train_leaves[None, :]).to(torch.float64)  # (n_query, n_train)


def tw_ignores_counts(train_leaves, query_leaves, counts):
    same = _same_leaf(train_leaves, query_leaves)
    return same / same.sum(dim=1, keepdim=True)  # uniform over the leaf


def tw_not_normalised(train_leaves, query_leaves, counts):
    return _same_leaf(train_leaves, query_leaves) * counts  # rows sum to the leaf's total count


def tw_over_all_points(train_leaves, query_leaves, counts):
    return _same_leaf(train_leaves, query_leaves) * counts / counts.sum()  # the total over ALL training points


def tw_by_leaf_size(train_leaves, query_leaves, counts):
    same = _same_leaf(train_leaves, query_leaves)
    return same * counts / same.sum(dim=1, keepdim=True)  # the number of points in the leaf, not their counts


def tw_transposed(train_leaves, query_leaves, counts):
    w = (train_leaves[:, None] == query_leaves[None, :]) * counts[:, None]  # (n_train, n_query)
    return w / w.sum(dim=0, keepdim=True)


def tw_normalises_columns(train_leaves, query_leaves, counts):
    w = _same_leaf(train_leaves, query_leaves) * counts
    return w / w.sum(dim=0, keepdim=True)  # dim=0: the columns


# ----------------------------------------------------------------------------------------------------------
# 08.2 the effective number of parameters
# ----------------------------------------------------------------------------------------------------------


def ep_mean_of_norms(weights):
    return float((weights**2).sum(dim=1).mean())  # forgets the n_train factor


def ep_sums_weights(weights):
    n_query, n_train = weights.shape
    return float(n_train / n_query * weights.sum())  # the weights, not their squares: always n_train


def ep_trace(weights):
    return float(torch.trace(weights))  # the classical degrees of freedom of a square S


def ep_divides_by_n_train(weights):
    n_train = weights.shape[1]
    return float(n_train / n_train * (weights**2).sum())  # n_train / n_train instead of n_train / n_query


def ep_per_query(weights):
    return weights.shape[1] * (weights**2).sum(dim=1)  # one number per query


def ep_no_division(weights):
    return float(weights.shape[1] * (weights**2).sum())  # the sum over the queries, not the mean


def ep_norms_not_squared(weights):
    n_query, n_train = weights.shape
    return float(n_train / n_query * weights.norm(dim=1).sum())


def _reference(exercise_id):
    from ensemble_lab.exercises import catalogue

    return catalogue.get(exercise_id).reference


#: exercise id -> [(wrong function, parts its message must contain)]
WRONG_ANSWERS = {
    "01.1": [
        (avg_not_normalised, ["on random input 1 of 3", "largest difference", "expected", "got"]),
        (avg_wrong_axis, ["on random input 1 of 3", "expected shape (200, 4), got shape (3, 4)"]),
        (avg_ignores_weights, ["on random input 1 of 3", "largest difference"]),
        (avg_softmax_weights, ["on random input 1 of 3", "largest difference"]),
        (avg_clamps_zero_weight, ["on a member with weight 0", "largest difference"]),
        (avg_in_place, ["on random input 1 of 3", "modified its input weights"]),
    ],
    "01.2": [
        (nll_sum, ["on random input 1 of 3", "expected 2.8768, got 575.361"]),
        (nll_of_max, ["on random input 1 of 3", "expected", "got"]),
        (nll_wrong_index, ["on random input 1 of 3", "expected", "got"]),
        (nll_no_minus, ["on random input 1 of 3", "got -"]),
        (nll_log10, ["on random input 1 of 3", "expected", "got"]),
        (nll_per_sample, ["expected a number, got shape (200,)"]),
    ],
    "01.3": [
        (mi_entropy_of_mean, ["on random input 1 of 3", "largest difference"]),
        (mi_sign_swapped, ["on random input 1 of 3", "largest difference"]),
        (mi_zero_log_zero, ["on probabilities of exactly 0 (0 log 0 = 0)", "got nan at [0]"]),
        (mi_mean_over_images, ["expected shape (200,), got a number"]),
        (mi_wrong_axis, ["expected shape (200,), got shape (4,)"]),
        (mi_log2, ["on random input 1 of 3", "largest difference"]),
    ],
    "01.4": [
        (geo_softmax_wrong_axis, ["on random input 1 of 3", "largest difference"]),
        (geo_not_renormalised, ["on random input 1 of 3", "largest difference"]),
        (geo_arithmetic, ["on random input 1 of 3", "largest difference"]),
        (geo_ignores_weights, ["on random input 1 of 3", "largest difference"]),
    ],
    "02.1": [
        (ece_half_open_low, ["on confidences exactly on the bin edges (4 bins)", "expected 0.", "got 0."]),
        (ece_bins_off_by_one, ["on random input 1 of 3", "expected", "got"]),
        (ece_unweighted, ["on random input 1 of 3", "expected", "got"]),
        (ece_overall_accuracy, ["on random input 1 of 3", "expected", "got"]),
        (ece_class0_confidence, ["on random input 1 of 3", "expected", "got"]),
        (ece_nan_empty_bins, ["on random input 1 of 3", "got nan", "An empty bin has no mean"]),
    ],
    "02.2": [
        (t_multiplies, ["on random input 1 of 3", "expected T = 2.", "got T = 0.", "NLL"]),
        (t_always_one, ["on random input 1 of 3", "got T = 1 "]),
        (t_coarse_grid, ["expected T =", "within 1% of the package's fit"]),
        (t_returns_log, ["on random input 1 of 3", "got T = 0."]),
        (t_narrow_grid, ["on a temperature far above 1", "got T = 3.16"]),
    ],
    "03.1": [
        (zpe_no_debias, ["on random input 1 of 3", "largest difference"]),
        (zpe_test_only, ["on random input 1 of 3", "largest difference"]),
        (zpe_pretrain_only, ["on random input 1 of 3", "largest difference"]),
        (zpe_pooled_mean, ["on random input 1 of 3", "largest difference"]),
        (zpe_max_over_prompts, ["expected shape (6,), got shape (5,)"]),
        (zpe_mean_then_max, ["on random input 1 of 3", "largest difference"]),
    ],
    "03.2": [
        (zw_no_temperature, ["on random input 2 of 3", "largest difference"]),
        (zw_normalised_by_sum, ["on random input 1 of 3", "largest difference"]),
        (zw_multiplies, ["on random input 2 of 3", "largest difference"]),
        (zw_naive_exp, ["on a small temperature (T = 0.02, scores near 30)", "got nan"]),
    ],
    "04.1": [
        (win_torch_quantile, ["on random input 1 of 3", "lo: expected", "got"]),
        (win_strict_level, ["on a threshold equal to a validation score", "expected", "got"]),
        (win_clamped, ["on a window reaching above the top score", "hi: expected inf, got 0.99", "open on that side"]),
        (win_round, ["on random input 1 of 3", "expected", "got"]),
        (win_swapped, ["on random input 1 of 3", "lo: expected"]),
    ],
    "04.2": [
        (pass_closed, ["on scores exactly on the window's edges", "expected False, got True", "a score on an edge"]),
        (pass_half_open, ["on scores exactly on the window's edges", "score 0.25 with lo = 0.25, hi = 0.75"]),
        (pass_outside, ["on random input 1 of 3", "samples differ"]),
        (pass_chained, ["pass_chained raised RuntimeError: Boolean value of Tensor", "on random input 1 of 3"]),
        (pass_indices, ["on random input 1 of 3", "expected a True/False tensor of shape (200,), got shape"]),
    ],
    "05.1": [
        (wise_swapped, ["on random input 1 of 3", "key 'layer1.weight': largest difference"]),
        (wise_averages_counter, ["on an integer buffer", "'bn.num_batches_tracked': expected 5, got 7", "from a"]),
        (wise_in_place, ["on random input 1 of 3", "modified its input a (key 'layer1.weight')"]),
        (wise_drops_keys, ["on random input 1 of 3", "the result has no key 'layer1.bias'"]),
        (wise_task_vector, ["on random input 1 of 3", "largest difference"]),
    ],
    "05.2": [
        (
            soup_non_strict,
            ["on a candidate that leaves the soup's score unchanged (a tie)", "[0] to be kept, got [0, 1]"],
        ),
        (soup_unsorted, ["expected the ingredients", "to be kept, got"]),
        (soup_worst_first, ["expected the ingredients", "to be kept, got"]),
        (soup_own_score, ["on random input 1 of 3", "expected the ingredients [2, 3] to be kept, got [2]"]),
        (
            soup_running_average,
            ["three ingredients kept (the soup is their uniform average)", "[0, 1, 2] to be kept, got [0, 1]"],
        ),
        (soup_keeps_all, ["on random input 1 of 3", "to be kept, got [0, 1, 2, 3, 4, 5]"]),
        (soup_returns_dict, ["return the indices, not the soup"]),
    ],
    "06.1": [
        (
            fs_without_replacement,
            ["on random input 1 of 3", "step 3: expected model 1, got model 3", "WITH replacement"],
        ),
        (fs_ties_to_highest, ["on two identical models", "step 1: expected model 1, got model 2", "LOWEST index"]),
        (fs_nll, ["on random input 2 of 3", "step 2: expected model 1, got model 0", "Brier score"]),
        (fs_counts, ["on random input 1 of 3", "got 5 numbers [0, 2, 2, 0, 0]", "counts"]),
        (fs_one_step_short, ["on random input 1 of 3", "expected 4 model indices", "got 3 indices"]),
        (fs_sum_not_average, ["on random input 1 of 3", "step 3: expected model 1", "AVERAGE"]),
        (fs_running_average, ["on random input 2 of 3", "step 5: expected model 3, got model 0"]),
    ],
    "06.2": [
        (amb_around_label, ["on random input 1 of 3", "the ambiguity: expected 0.141099", "around the label"]),
        (amb_brier_mean_over_classes, ["the mean member Brier: expected", "3 times too small", "SUMS over"]),
        (amb_not_divided_by_k, ["on random input 1 of 3", "the ambiguity: expected", "4 times too large"]),
        (amb_other_order, ["on random input 1 of 3", "the right three numbers in the wrong order"]),
        (amb_mean_member_as_ensemble, ["the ensemble's Brier: expected", "AVERAGED probabilities"]),
        (amb_returns_per_sample, ["expected a tuple of 3 numbers (mean_member_brier, ambiguity, ensemble_brier)"]),
    ],
    "07.1": [
        (
            crps_standard,
            ["on random input 1 of 3", "largest difference", "that is the standard CRPS", "2 M (M - 1) = 40"],
        ),
        (crps_no_half, ["on random input 1 of 3", "twice too large", "not by M (M - 1) = 20"]),
        (crps_pairs_once, ["on random input 1 of 3", "half too small", "ALL pairs (i, j)"]),
        (crps_skill_only, ["on random input 1 of 3", "expected", "got", "mean_i |x_i - y| alone"]),
        (
            crps_mean_over_points,
            ["expected a tensor of shape (200,), one fair CRPS per point, got a number", "mean over the points"],
        ),
        (crps_wrong_axis, ["on random input 1 of 3", "got shape (5,), one number per MEMBER"]),
    ],
    "07.2": [
        (
            rh_counts_above,
            [
                "on random input 1 of 3",
                "expected [39, 39, 27, 30, 34, 31], got [31, 34, 30, 27, 39, 39]",
                "the bins are reversed",
            ],
        ),
        (
            rh_no_minlength,
            ["every observation below all its members: all in bin 0", "got 1 number [50]", "minlength=M + 1"],
        ),
        (rh_m_bins, ["on random input 1 of 3", "got 5 numbers", "M bins instead of M + 1"]),
        (rh_ranks, ["on random input 1 of 3", "got shape (200,): the rank of every observation"]),
        (rh_frequencies, ["on random input 1 of 3", "counts, not frequencies (they sum to N = 200)"]),
        (rh_wrong_axis, ["on random input 1 of 3", "got 101 numbers:", "sum the comparisons over the members, dim=0"]),
    ],
    "08.1": [
        (
            tw_ignores_counts,
            [
                "on random input 1 of 3",
                "uniform over the leaf",
                "the bootstrap counts: a point drawn twice weighs twice, a point left out weighs 0",
            ],
        ),
        (tw_not_normalised, ["on random input 1 of 3", "sums to", "the rows must sum to 1"]),
        (
            tw_over_all_points,
            ["on random input 1 of 3", "normalised over ALL the training points (the counts sum to 40)"],
        ),
        (tw_by_leaf_size, ["on random input 1 of 3", "divided by the number of training points in the leaf"]),
        (tw_transposed, ["expected a tensor of shape (25, 40) (n_query, n_train)", "got shape (40, 25)", "transpose"]),
        (tw_normalises_columns, ["on random input 1 of 3", "got nan", "the columns (dim=0) are normalised"]),
    ],
    "08.2": [
        (ep_mean_of_norms, ["on random input 1 of 3", "n_train = 60 times too small", "mean over the queries"]),
        (ep_sums_weights, ["on random input 1 of 3", "got 60", "SQUARES gives n_train for every smoother"]),
        (
            ep_trace,
            ["on random input 1 of 3", "the trace of S", "here S is (40, 60)", "query j is not training point j"],
        ),
        (ep_divides_by_n_train, ["on random input 1 of 3", "dividing by n_train instead of n_query", "here 60 / 40"]),
        (ep_per_query, ["on random input 1 of 3", "expected a number", "got shape (40,): one value per query"]),
        (ep_no_division, ["on random input 1 of 3", "n_query = 40 times too large"]),
        (ep_norms_not_squared, ["on random input 1 of 3", "the norms are not squared"]),
    ],
}
