"""Prompts Lab update latency after a checkbox change: re-scoring and re-weighting 64 prompts x 10 classes x 10k
images (text and image embeddings cached; a prompt's ZPE score depends only on its own logits, so unticking a
prompt re-weights without re-scoring).

Synthetic embeddings (D = 64): the latency depends on the shapes, not on what a model learned.  One domain, so
the paper-layout table adds one row.
"""

from __future__ import annotations

import time
import zlib
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from benchmarks._timing import median, p95  # noqa: E402
from ensemble_lab.artefacts.zeroshot import ZeroShotData  # noqa: E402
from ensemble_lab.labs import PromptsLab  # noqa: E402

P, C, N, D, MOVES = 64, 10, 10_000, 64, 100
NAMES = tuple(f"class{c}" for c in range(C))


class _RandomModel:
    """Text embeddings seeded by the text itself; image "embeddings" passed through."""

    logit_scale = 50.0

    def encode_image(self, images):
        return images

    def encode_text(self, texts):
        return torch.stack(
            [torch.randn(D, generator=torch.Generator().manual_seed(zlib.crc32(t.encode()))) for t in texts]
        )

    def unknown_words(self, text):
        return []


def _lab() -> PromptsLab:
    g = torch.Generator().manual_seed(0)
    domain = SimpleNamespace(images=torch.randn(N, D, generator=g), labels=torch.randint(0, C, (N,), generator=g))
    data = ZeroShotData(_RandomModel(), {"synthetic": domain}, torch.randn(2000, D, generator=g), NAMES, progress=False)
    pool = [f"template number {i} of a {{}}." for i in range(P)]
    return PromptsLab(data, pool, hand_crafted=pool[:4])


def _latencies(lab, with_view: bool) -> list[float]:
    g = torch.Generator().manual_seed(1)
    if with_view:
        lab.view  # noqa: B018
    pool = list(lab.state.templates)
    out = []
    for _ in range(MOVES):
        keep = torch.rand(P, generator=g) < 0.8
        keep[0] = True
        selected = [t for t, k in zip(pool, keep, strict=False) if k]
        start = time.perf_counter()
        ok = lab.set(selected=selected)
        out.append(time.perf_counter() - start)
        assert ok, lab.status
    return out


def main() -> str:
    lines = [
        "## Prompts Lab (64 prompts x 10 classes x 10k images, 100 checkbox changes)",
        "",
        "| what | median | p95 | target p95 |",
        "|---|---|---|---|",
    ]
    for weighting, view, target in (
        ("zpe-both", False, "50 ms"),
        ("zpe-select", False, "-"),
        ("equal", False, "-"),
        ("zpe-both", True, "-"),
    ):
        lab = _lab()
        assert lab.set(weighting=weighting)
        xs = _latencies(lab, view)
        what = f"{weighting}: checkbox -> numbers and table" + (" + plots redrawn" if view else "")
        lines.append(f"| {what} | {1e3 * median(xs):.1f} ms | {1e3 * p95(xs):.1f} ms | {target} |")
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
