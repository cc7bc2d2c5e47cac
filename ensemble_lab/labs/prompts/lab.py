"""The prompts Lab: build a zero-shot classifier from a pool of prompt templates, weight the prompts, and see
accuracy and calibration change.

Headless use::

    data = ZeroShotData(load_miniclip(), zero_shot_domains(), pretraining_sample(), CLASS_NAMES)
    lab = PromptsLab(data, PROMPT_POOL, hand_crafted=HAND_CRAFTED)
    lab.set(weighting="zpe-both");  lab.result.metrics["accuracy"]
    lab.add_template("a faded picture of the number {}.")      # checked, encoded, ticked
    lab.set(selected=lab.state.selected[:10])                  # untick all but ten

Weightings (``WEIGHTINGS``): ``"equal"`` is the standard CLIP prompt ensemble (average the normalised text
embeddings per class, re-normalise); the others weight the per-prompt logits, ``sum_p w_p l[n, p, c]``:
``"equal-logits"`` (equal weights: the average of the prompts' logits, the equal baseline of the ZPE authors'
code, which differs from CLIP's by a per-class factor), ``"max-logit"`` (ZPE's score without debiasing),
``"zpe-both"``, ``"zpe-pretrain"``, ``"zpe-test"`` (ZPE with that debiasing), ``"zpe-select"`` (keep the
prompts whose robust z-score exceeds ``tau``, equal weights) and ``"oracle"`` (the weights minimising NLL *with
the labels*, a reference no zero-shot method can use).
Prompt scores use the first ``n_images`` images of a seeded shuffle of the domain (no labels); accuracy, NLL
and ECE use all its images and labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ... import metrics, prompts
from ...combine import learn_weights
from ...data.captions import PLAIN_PROMPT
from ..base import Lab, cached, lab_work
from ..challenges import Target, challenge
from ..state import N_BINS, TEMPERATURE, LabState, Setting

__all__ = ["PromptsState", "PromptsResult", "PromptsLab", "WEIGHTINGS", "TABLE_COLUMNS"]

WEIGHTINGS = ("equal", "equal-logits", "max-logit", "zpe-both", "zpe-pretrain", "zpe-test", "zpe-select", "oracle")
_DEBIAS = {
    "max-logit": "none",
    "zpe-both": "both",
    "zpe-pretrain": "pretrain",
    "zpe-test": "test",
    "zpe-select": "both",
    "equal": "both",
    "equal-logits": "both",
    "oracle": "both",
}  # the scores shown for each weighting
TABLE_COLUMNS = (
    "class name",
    "plain prompt",
    "hand-crafted",
    "pool average",
    "logit average",
    "max-logit",
    "ZPE",
    "ZPE select",
)


class PromptsState(LabState):
    """Settings of the prompts Lab."""

    SETTINGS = {
        "templates": Setting(list, (), "every template the Lab knows, in order", item=str),
        "selected": Setting(list, (), "the templates in the pool (ticked)", item=str),
        "weighting": Setting(str, "zpe-both", "how the prompts are weighted", choices=WEIGHTINGS),
        "temperature": TEMPERATURE,
        "tau": Setting(float, 0.5, "zpe-select keeps prompts with robust z-score > tau"),
        "n_images": Setting(int, 0, "unlabeled images used to score prompts; 0 means all", low=0),
        "domain": Setting(str, "", "the zero-shot test set"),
        "n_bins": N_BINS,
    }


@dataclass(frozen=True)
class PromptsResult:
    """What the Lab shows for one State.

    ``metrics``: accuracy, nll, brier, ece (floats) of the current classifier on ``domain``; ``reliability``
    its diagram; ``selected`` the pool's templates, ``scores`` ``(P,)`` their ZPE scores under the debiasing
    that ``weighting`` uses (``"both"`` for equal and oracle, shown for reference) and ``weights`` ``(P,)`` the
    weights used (uniform for ``"equal"`` and ``"equal-logits"``).  ``table``: domain -> column
    (``TABLE_COLUMNS``) -> accuracy, the paper's layout, for the current pool, temperature and tau; "pool
    average" is CLIP's embedding average of the ticked pool, "logit average" the average of their logits (the ZPE
    authors' equal baseline); "class name", "plain prompt" and "hand-crafted" are fixed embedding averages.
    """

    domain: str
    weighting: str
    n_samples: int
    n_scored: int
    metrics: dict[str, float]
    reliability: metrics.Reliability
    selected: tuple[str, ...]
    scores: torch.Tensor
    weights: torch.Tensor
    table: dict[str, dict[str, float]]


class PromptsLab(Lab):
    """Interactive zero-shot prompt ensembling on cached embeddings.

    Args:
        data: a :class:`~ensemble_lab.artefacts.zeroshot.ZeroShotData`.
        pool: the starting templates (all ticked).
        hand_crafted: a hand-picked set of templates for the table's "hand-crafted" column (must be encodable).
        plain: the single template of the table's "plain prompt" column (default: the caption world's
            :data:`~ensemble_lab.data.captions.PLAIN_PROMPT`; CLIP's own is ``"a photo of a {}."``).
        state: initial settings (default: the whole pool, ZPE with both debiasings, the first domain).
    """

    State = PromptsState
    KEY = "prompts"
    CHALLENGES = (
        challenge(
            "few-good-prompts",
            "A few good prompts",
            "on rotated, beat the hand-crafted prompts by 5 points with at most 5 ticked prompts, without labels",
            Target("domain", lambda r, s: r.domain, "==", "rotated", fmt=str),
            Target("prompts", lambda r, s: len(r.selected), "<=", 5, fmt=str),
            Target(
                "weighting",
                lambda r, s: "no labels" if r.weighting != "oracle" else "oracle",
                "==",
                "no labels",
                fmt=str,
            ),
            Target(
                "accuracy",
                lambda r, s: r.metrics["accuracy"],
                ">=",
                lambda r, s: r.table[r.domain]["hand-crafted"] + 0.05,
                bound_label="hand-crafted + 5",
            ),
        ),
    )
    weightings = WEIGHTINGS
    table_columns = TABLE_COLUMNS

    def __init__(self, data, pool, hand_crafted=(), plain: str = PLAIN_PROMPT, state: PromptsState | None = None):
        self.data = data
        pool = [prompts.check_template(t, "pool") for t in pool]
        if not pool:
            raise ValueError("pool must hold at least one template")
        self.pool = tuple(pool)
        self.plain = prompts.check_template(plain, "plain")
        self.hand_crafted = tuple(prompts.check_template(t, "hand_crafted") for t in hand_crafted) or (self.plain,)
        super().__init__(state)

    def limits(self):
        return {"domain": tuple(self.data.domains)}

    def defaults(self):
        return {"templates": list(self.pool), "selected": list(self.pool), "domain": self.data.domains[0]}

    # -- cached pieces ----------------------------------------------------------------------------------
    def _score_index(self, domain: str, n_images: int, seed: int) -> torch.Tensor:
        n = self.data.images[domain].shape[0]
        if n_images > n:
            raise ValueError(f"n_images must be at most the {n} images of domain {domain!r}, got {n_images}")
        return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[: n_images or n]

    @cached(maxsize=32)
    def _logits(self, domain: str | None, templates: tuple[str, ...]) -> torch.Tensor:
        """``(N, P_all, C)`` per-prompt logits of every known template (``domain=None``: the pre-training
        sample)."""
        z = self.data.pretrain_logits(templates) if domain is None else self.data.logits(domain, templates)
        return z.transpose(0, 1).contiguous().transpose(0, 1)  # stored prompt-major: re-weighting is one GEMV

    @cached(maxsize=64)
    def _all_scores(self, domain, templates, n_images, seed, debias) -> torch.Tensor:
        """ZPE scores ``(P_all,)`` of every known template: a prompt's score depends on its own logits only, so
        (un)ticking prompts never re-scores."""
        logits = self._logits(domain, templates)[self._score_index(domain, n_images, seed)]
        pre = self._logits(None, templates) if debias in ("both", "pretrain") else None
        return prompts.zpe_scores(logits, pre, debias=debias)

    @cached(maxsize=32)
    def _oracle(self, domain, templates, idx) -> torch.Tensor:
        logits = self._logits(domain, templates)[:, list(idx)]  # (N, P, C)
        return learn_weights(logits.permute(1, 0, 2), self.data.labels[domain], rule="logit")

    @cached(maxsize=64)
    def _fixed_row(self, domain: str, templates: tuple[str, ...]) -> float:
        """Accuracy of the equal-average classifier of ``templates`` on ``domain``."""
        cls = prompts.average_text_embeddings(self.data.text_embeddings(templates))
        z = prompts.zero_shot_logits(self.data.images[domain], cls, self.data.logit_scale)
        return metrics.top1_accuracy(z, self.data.labels[domain])

    # -- the classifier for one weighting -------------------------------------------------------------
    def _classifier(self, state, domain: str, weighting: str):
        """``(logits (N, C), scores (P,), weights (P,))`` of the ticked pool on ``domain``.

        The weighted ensemble runs over every known template with zero weight on the unticked ones, so a
        checkbox change copies nothing: one einsum over the cached ``(N, P_all, C)`` logits."""
        templates, selected = tuple(state.templates), self._selected(state)
        idx = torch.tensor([templates.index(t) for t in selected])
        scores = self._all_scores(domain, templates, state.n_images, state.seed, _DEBIAS[weighting])[idx]
        p = len(selected)
        full = self._logits(domain, templates)  # checked when it was computed
        if weighting == "equal":  # CLIP's embedding average, from the cached logits (equal_average_logits)
            w_all = torch.zeros(len(templates), dtype=full.dtype).index_fill_(0, idx, 1.0 / p)
            logits = prompts.equal_average_logits(full, self.data.text_embeddings(templates), w_all, validate=False)
            return logits, scores, torch.full((p,), 1.0 / p, dtype=torch.float64)
        if weighting == "oracle":
            w = self._oracle(domain, templates, tuple(idx.tolist()))
        elif weighting == "equal-logits":
            w = torch.full((p,), 1.0 / p, dtype=torch.float64)
        elif weighting == "zpe-select":
            w = prompts.zpe_select(scores, state.tau)
        else:
            w = prompts.zpe_weights(scores, state.temperature)
        w_all = torch.zeros(len(templates), dtype=full.dtype).index_copy_(0, idx, w.to(full.dtype))
        logits = prompts.ensemble_prompt_logits(full, w_all, validate=False)
        return logits, scores, w.to(torch.float64)

    def _selected(self, state) -> tuple[str, ...]:
        unknown = [t for t in state.selected if t not in state.templates]
        if unknown:
            raise ValueError(f"selected must name known templates; unknown: {unknown}")
        if not state.selected:
            raise ValueError("selected: the prompt pool is empty; tick at least one template")
        chosen = set(state.selected)
        return tuple(t for t in state.templates if t in chosen)

    # -- the computation -------------------------------------------------------------------------------
    def compute(self, state: PromptsState) -> PromptsResult:
        if len(set(state.templates)) != len(state.templates):
            raise ValueError("templates must not repeat a template")
        logits, scores, weights = self._classifier(state, state.domain, state.weighting)
        y = self.data.labels[state.domain]
        p = torch.softmax(logits.double(), dim=-1)
        return PromptsResult(
            domain=state.domain,
            weighting=state.weighting,
            n_samples=int(y.shape[0]),
            n_scored=int(self._score_index(state.domain, state.n_images, state.seed).shape[0]),
            metrics=metrics.summary(p, y, n_bins=state.n_bins, validate=False),
            reliability=metrics.reliability(p, y, n_bins=state.n_bins, validate=False),
            selected=self._selected(state),
            scores=scores,
            weights=weights,
            table=self._table(
                tuple(state.templates), tuple(state.selected), state.temperature, state.tau, state.n_images, state.seed
            ),
        )

    @cached(maxsize=16)
    def _table(self, templates, selected, temperature, tau, n_images, seed) -> dict[str, dict[str, float]]:
        """The paper's layout: one row per domain, one column per classifier (accuracy)."""
        state = _Shadow(
            None,
            templates=list(templates),
            selected=list(selected),
            temperature=temperature,
            tau=tau,
            n_images=n_images,
            seed=seed,
        )
        table = {}
        for domain in self.data.domains:
            y = self.data.labels[domain]
            # a smaller domain is scored on all its images
            n_images = 0 if state.n_images > self.data.images[domain].shape[0] else state.n_images

            def acc(weighting, domain=domain, y=y, n_images=n_images):
                shadow = _Shadow(state, n_images=n_images)
                z = self._classifier(shadow, domain, weighting)[0]
                return metrics.top1_accuracy(z, y)

            table[domain] = {
                "class name": self._fixed_row(domain, (prompts.CLASS_NAME_ONLY,)),
                "plain prompt": self._fixed_row(domain, (self.plain,)),
                "hand-crafted": self._fixed_row(domain, self.hand_crafted),
                "pool average": acc("equal"),
                "logit average": acc("equal-logits"),
                "max-logit": acc("max-logit"),
                "ZPE": acc("zpe-both"),
                "ZPE select": acc("zpe-select"),
            }
        return table

    # -- editing the pool ------------------------------------------------------------------------------
    def add_template(self, template: str) -> bool:
        """Check ``template`` (exactly one ``{}``), encode it, add it to the pool and tick it.

        Words the model has never seen are flagged in ``status`` (they are ignored by its tokenizer); a template
        of unknown words only, or an invalid one, is refused with a message and the pool stays as it was.
        """
        with lab_work():
            return self._add_template(template)

    def _add_template(self, template: str) -> bool:
        try:
            template = prompts.check_template(template)
            if template in self.state.templates:
                raise ValueError(f"template {template!r} is already in the pool")
            unknown = self.data.unknown_words(template)
            self.data.text_embeddings([template])  # encodes now: an all-unknown template fails here
        except (TypeError, ValueError) as exc:
            self.status = str(exc)
            return False
        ok = self.set(templates=[*self.state.templates, template], selected=[*self.state.selected, template])
        if ok and unknown:
            self.status = f"note: the model does not know {', '.join(map(repr, unknown))}; those words are ignored"
        return ok


class _Shadow:
    """The State's values with some replaced (for computing the table's other columns)."""

    def __init__(self, state, **override):
        self._state, self._override = state, override

    def __getattr__(self, name):
        return self._override[name] if name in self._override else getattr(self._state, name)
