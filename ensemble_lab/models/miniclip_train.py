"""Train MiniCLIP on the synthetic caption world and write the weights that ship with the package.

Run ``python -m ensemble_lab.models.miniclip_train [--out DIR] [--epochs E] [--seed S]``.  Defaults reproduce
``ensemble_lab/models/weights/miniclip.{safetensors,json}``: the same torch version on the same kind of cpu
with the same ``--threads`` (default 2) gives bit-identical weights (seeded init and data order, deterministic
algorithms).  Other set-ups give other bits: with ``--threads 1`` the per-domain zero-shot accuracies moved by
up to 1.1 points (plain prompt, pool average of logits) and 2.2 points (pool average of embeddings), and the
qualitative properties (style prompts best on their domain, spurious prompts biased) held.

Recipe: the pre-training pairs of :func:`ensemble_lab.data.captions.pretraining_pairs`, AdamW with a linear
warm-up and a cosine decay, batches of images with their captions, and CLIP's symmetric contrastive loss with a
learnable temperature.  Identical captions inside a batch are embedded once: image -> text is a softmax over the
batch's distinct captions, text -> image a softmax over the batch's images whose target spreads evenly over all
the images carrying that caption (plain InfoNCE would treat the copies of "a photo of the number one" as
negatives of each other).

Afterwards the script reloads the written weights with :func:`ensemble_lab.models.miniclip.load_miniclip` and
records in the JSON, per zero-shot domain, the accuracy of the plain prompt, of the equal-weight average of
:data:`~ensemble_lab.data.captions.PROMPT_POOL` (mean of the per-prompt logits, and mean of the normalised
text embeddings), of :data:`~ensemble_lab.data.captions.HAND_CRAFTED`, and of every single prompt; and, for each
spuriously correlated prompt, how often it predicts its word's class (:func:`spurious_prediction_rate`).

Takes about 1.5 minutes on 2 cpu cores (3 minutes when the cores are shared): ~15 s to generate the world the
first time (then cached), ~80 s to train (948 steps of 512 pairs), ~2 s to evaluate.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.captions import (
    CLASS_NAMES,
    HAND_CRAFTED,
    PLAIN_PROMPT,
    PROMPT_GROUPS,
    PROMPT_POOL,
    SPURIOUS_WORDS,
    STYLES,
    caption_vocabulary,
    pretraining_pairs,
    zero_shot_domains,
)
from ..device import cpu_quota, fit_threads_to_cpus, make_generator
from .miniclip import MiniCLIP, WordTokenizer, load_miniclip, miniclip_paths

__all__ = [
    "DEFAULTS",
    "MODEL_CONFIG",
    "vocabulary",
    "train_miniclip",
    "per_prompt_logits",
    "evaluate",
    "spurious_prediction_rate",
    "main",
]

DEFAULTS = dict(
    seed=0,
    epochs=12,
    n_pairs=40_000,
    n_per_domain=1000,
    batch_size=512,
    lr=2e-3,
    weight_decay=0.05,
    warmup_steps=100,
    threads=2,
)
MODEL_CONFIG = dict(
    embed_dim=64,
    context_length=12,
    image_widths=[32, 64],
    image_hidden=128,
    text_width=64,
    text_layers=2,
    text_heads=4,
    image_size=16,
)


def vocabulary() -> list[str]:
    """The caption world's words plus every word of the prompt pool, sorted."""
    words = set(caption_vocabulary())
    for template in PROMPT_POOL:
        words.update(WordTokenizer.words(template.replace("{}", " ")))
    return sorted(words)


def _contrastive_loss(img: torch.Tensor, txt: torch.Tensor, inverse: torch.Tensor, scale: torch.Tensor):
    """Symmetric InfoNCE for ``img`` ``(B, D)`` against distinct captions ``txt`` ``(U, D)``; image ``b`` carries
    caption ``inverse[b]``."""
    logits = scale * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).T  # (B, U)
    loss_i = F.cross_entropy(logits, inverse)
    target = F.one_hot(inverse, txt.shape[0]).T.to(logits.dtype)  # (U, B)
    target = target / target.sum(dim=1, keepdim=True)
    loss_t = -(target * logits.T.log_softmax(dim=1)).sum(dim=1).mean()
    return 0.5 * (loss_i + loss_t)


def train_miniclip(
    seed: int = 0,
    epochs: int = DEFAULTS["epochs"],
    n_pairs: int = DEFAULTS["n_pairs"],
    batch_size: int = DEFAULTS["batch_size"],
    lr: float = DEFAULTS["lr"],
    weight_decay: float = DEFAULTS["weight_decay"],
    warmup_steps: int = DEFAULTS["warmup_steps"],
    model_config: dict | None = None,
    progress: bool = True,
) -> MiniCLIP:
    """Train a MiniCLIP on ``pretraining_pairs(seed, n_pairs)`` on the cpu; returns it in eval mode."""
    from tqdm.auto import tqdm

    pairs = pretraining_pairs(seed, n_pairs)
    vocab = vocabulary()
    config = dict(MODEL_CONFIG if model_config is None else model_config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MiniCLIP(vocab, **config)
    # distinct captions, tokenised once
    distinct, caption_index = np.unique(np.asarray(pairs.captions, dtype=object).astype(str), return_inverse=True)
    ids, mask = model.tokenizer.encode(list(distinct), model.context_length)
    caption_index = torch.as_tensor(caption_index, dtype=torch.int64)
    images = pairs.images

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and n != "text.position"]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and n != "text.position")]
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=weight_decay), dict(params=rest, weight_decay=0.0)], lr=lr)
    steps_per_epoch = math.ceil(len(images) / batch_size)
    total = epochs * steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warmup_steps:
            return lr * (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total - warmup_steps)
        return lr * 0.5 * (1 + math.cos(math.pi * t))

    gen = make_generator(seed + 1)
    model.train()
    step = 0
    bar = tqdm(total=total, desc="MiniCLIP", disable=not progress, mininterval=1.0)
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            unique, inverse = torch.unique(caption_index[idx], return_inverse=True)
            img = model.visual(images[idx])
            txt = model.text(ids[unique], mask[unique])
            loss = _contrastive_loss(img, txt, inverse, model.scale())
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                model.log_scale.clamp_(max=math.log(100.0))
            step += 1
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}", scale=f"{model.logit_scale:.1f}")
    bar.close()
    return model.eval()


def per_prompt_logits(model: MiniCLIP, images: torch.Tensor, templates, classes=CLASS_NAMES) -> torch.Tensor:
    """Zero-shot logits ``(N, P, C)``: ``logit_scale * cos(image_n, templates[p] filled with classes[c])``, for
    ``images`` ``(N, 1, 16, 16)``; computed without gradients, returned on the model's device."""
    texts = [t.replace("{}", c) for t in templates for c in classes]
    with torch.no_grad():
        txt = F.normalize(model.encode_text(texts), dim=-1)  # (P * C, D)
        img = F.normalize(model.encode_image(images), dim=-1)  # (N, D)
        return (model.logit_scale * img @ txt.T).view(len(images), len(templates), len(classes))


def evaluate(model: MiniCLIP, domains: dict) -> dict:
    """Zero-shot accuracies (python floats) per domain: ``plain`` (:data:`PLAIN_PROMPT`), ``pool_mean_logits``
    (mean over :data:`PROMPT_POOL` of the per-prompt logits), ``pool_mean_embedding`` (CLIP's prompt ensemble:
    mean of the normalised text embeddings per class, re-normalised), ``hand_crafted`` (mean logits over
    :data:`HAND_CRAFTED`) and ``per_prompt`` (a list in the order of the pool)."""
    pool = list(PROMPT_POOL)
    plain = pool.index(PLAIN_PROMPT)
    hand = [pool.index(t) for t in HAND_CRAFTED]
    keys = ("plain", "pool_mean_logits", "pool_mean_embedding", "hand_crafted", "per_prompt")
    out: dict[str, dict] = {k: {} for k in keys}
    with torch.no_grad():
        texts = [t.replace("{}", c) for t in pool for c in CLASS_NAMES]
        txt = F.normalize(model.encode_text(texts), dim=-1).view(len(pool), len(CLASS_NAMES), -1)
        pooled = F.normalize(txt.mean(dim=0), dim=-1)  # (C, D)
        for name, ds in domains.items():
            labels = ds.labels.to(model.device)
            img = F.normalize(model.encode_image(ds.images), dim=-1)  # (N, D)
            logits = model.logit_scale * torch.einsum("nd,pcd->npc", img, txt)

            def acc(lg, labels=labels):
                return float((lg.argmax(dim=-1) == labels).to(torch.float64).mean())

            out["plain"][name] = acc(logits[:, plain])
            out["pool_mean_logits"][name] = acc(logits.mean(dim=1))
            out["pool_mean_embedding"][name] = acc(img @ pooled.T)
            out["hand_crafted"][name] = acc(logits[:, hand].mean(dim=1))
            out["per_prompt"][name] = [acc(logits[:, p]) for p in range(len(pool))]
    return out


def spurious_prediction_rate(model: MiniCLIP, domains: dict) -> dict:
    """For each spuriously correlated prompt (group ``"spurious:<word>"`` of :data:`PROMPT_GROUPS`): the fraction
    of all images of ``domains`` that it classifies as the word's class (chance: about 0.1), next to the same
    fraction for the generic prompts: ``{template: {"class": name, "rate": r, "generic_rate": g}}``."""
    generic = [t for t in PROMPT_POOL if PROMPT_GROUPS[t] == "generic"]
    spurious = [t for t in PROMPT_POOL if PROMPT_GROUPS[t].startswith("spurious:")]
    images = torch.cat([ds.images for ds in domains.values()])
    pred_g = per_prompt_logits(model, images, generic).argmax(dim=-1)  # (N, G)
    pred_s = per_prompt_logits(model, images, spurious).argmax(dim=-1)  # (N, S)
    out = {}
    for k, t in enumerate(spurious):
        cls = SPURIOUS_WORDS[PROMPT_GROUPS[t].split(":", 1)[1]]
        c = CLASS_NAMES.index(cls)
        out[t] = {
            "class": cls,
            "rate": float((pred_s[:, k] == c).double().mean()),
            "generic_rate": float((pred_g == c).double().mean()),
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m ensemble_lab.models.miniclip_train", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the package's weights/)")
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument("--n-pairs", type=int, default=DEFAULTS["n_pairs"])
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULTS["threads"],
        help="torch threads (fixed, so that runs are reproducible; default 2)",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    for name in ("epochs", "n_pairs", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")

    fit_threads_to_cpus()
    quota = cpu_quota()
    if quota is not None and quota < args.threads:
        print(f"note: {args.threads} threads on {quota} cpu(s): slower, same result", file=sys.stderr)
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    try:
        return _run(args, argv)
    finally:  # leave the process as it was (main may be called from python, e.g. by the tests)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _run(args, argv) -> dict:
    out_dir = args.out
    weights, meta_path = miniclip_paths(out_dir)
    weights.parent.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    domains = zero_shot_domains(args.seed, DEFAULTS["n_per_domain"])
    model = train_miniclip(seed=args.seed, epochs=args.epochs, n_pairs=args.n_pairs, progress=not args.no_progress)
    train_seconds = time.perf_counter() - t0

    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(weights), metadata={"format": "pt", "model": "MiniCLIP"})
    os.chmod(weights, 0o644)
    meta = dict(
        model="MiniCLIP",
        vocab=list(model.tokenizer.vocab),
        config=model.config,
        logit_scale=model.logit_scale,
        seed=args.seed,
        training=dict(
            DEFAULTS,
            epochs=args.epochs,
            seed=args.seed,
            n_pairs=args.n_pairs,
            threads=args.threads,
            loss="symmetric InfoNCE over distinct captions, learnable temperature clamped at 100",
            optimizer="AdamW, linear warm-up then cosine decay",
        ),
        training_command="python -m ensemble_lab.models.miniclip_train"
        + "".join(f" {shlex.quote(a)}" for a in (argv if argv is not None else sys.argv[1:])),
        training_seconds=round(train_seconds, 1),
        torch_version=torch.__version__,
        plain_prompt=PLAIN_PROMPT,
        prompt_pool=list(PROMPT_POOL),
        domains=dict(seed=args.seed, n_per_domain=DEFAULTS["n_per_domain"], styles=list(STYLES)),
    )
    meta_path.write_text(json.dumps(dict(meta, zero_shot_accuracy={}), indent=1))
    reloaded = load_miniclip("cpu", weights_dir=weights.parent)
    meta["zero_shot_accuracy"] = evaluate(reloaded, domains)
    meta["spurious_prediction_rate"] = spurious_prediction_rate(reloaded, domains)
    meta_path.write_text(json.dumps(meta, indent=1))

    acc = meta["zero_shot_accuracy"]
    print(
        f"trained in {train_seconds:.0f} s; logit_scale {model.logit_scale:.1f}; wrote {weights} "
        f"({weights.stat().st_size / 1e6:.2f} MB) and {meta_path}"
    )
    print(f"{'domain':10s} {'plain':>6s} {'pool':>6s} {'poolE':>6s} {'hand':>6s} {'best':>6s}")
    for name in domains:
        best = max(acc["per_prompt"][name])
        print(
            f"{name:10s} {acc['plain'][name]:6.3f} {acc['pool_mean_logits'][name]:6.3f} "
            f"{acc['pool_mean_embedding'][name]:6.3f} {acc['hand_crafted'][name]:6.3f} {best:6.3f}"
        )
    return meta


if __name__ == "__main__":
    main()
