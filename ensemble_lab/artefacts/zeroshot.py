"""Embeddings for zero-shot classification with a text-image model, computed once and reused.

:class:`ZeroShotData` holds, for one model: the L2-normalised image embeddings of every zero-shot domain (with
their labels, for evaluation only) and of a sample of pre-training images (for ZPE's pre-training debiasing),
plus the text embedding of every template filled with every class name, encoded the first time a template is
asked for.  A prompts Lab then only multiplies cached embeddings: ``logits(domain, templates)`` is one einsum.

The model is anything with MiniCLIP's interface (``encode_image``, ``encode_text``, ``logit_scale``,
``unknown_words``): :func:`~ensemble_lab.models.miniclip.load_miniclip` or
:class:`~ensemble_lab.models.clip_adapter.OpenClipModel`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import prompts

__all__ = ["ZeroShotData"]


class ZeroShotData:
    """Cached embeddings of ``model`` on ``domains`` and ``pretrain_images``.

    Args:
        model: a text-image model (see the module docstring).
        domains: domain name -> dataset with ``images`` ``(N, ch, H, W)`` and ``labels`` ``(N,)``.
        pretrain_images: ``(M, ch, H, W)`` sample of the model's pre-training images.
        class_names: the C class names the templates are filled with.
        progress: show a progress bar while encoding the images.
    """

    def __init__(self, model, domains: Mapping, pretrain_images, class_names: Sequence[str], progress: bool = True):
        if not domains:
            raise ValueError("domains must name at least one zero-shot test set")
        if not class_names or not all(isinstance(c, str) and c for c in class_names):
            raise ValueError(f"class_names must be non-empty strings, got {list(class_names)!r}")
        self.model = model
        self.class_names = tuple(class_names)
        self.logit_scale = float(model.logit_scale)
        bar = tqdm(total=len(domains) + 1, desc="encoding images", unit="set", disable=not progress)
        self.images: dict[str, torch.Tensor] = {}
        self.labels: dict[str, torch.Tensor] = {}
        try:
            for name, ds in domains.items():
                self.images[name] = self._encode_images(ds.images)
                self.labels[name] = torch.as_tensor(ds.labels)
                bar.update(1)
            self.pretrain = self._encode_images(pretrain_images)
            bar.update(1)
        finally:
            bar.close()
        self._text: dict[str, torch.Tensor] = {}

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(self.images)

    @torch.no_grad()
    def _encode_images(self, images) -> torch.Tensor:
        return F.normalize(self.model.encode_image(images).float(), dim=-1).cpu()

    def unknown_words(self, template: str) -> list[str]:
        """Words of ``template`` (placeholder excluded) that the model's tokenizer has never seen.

        Raises ValueError if every word of the template is unknown (it would tell the model only the class
        name, silently)."""
        rest = prompts.check_template(template).replace("{}", " ")
        unknown = list(self.model.unknown_words(rest))
        if unknown:
            try:
                self.model.encode_text([rest])
            except ValueError as exc:
                raise ValueError(
                    f"template {template!r} has only words the model does not know: {', '.join(map(repr, unknown))}"
                ) from exc
        return unknown

    @torch.no_grad()
    def text_embeddings(self, templates: Sequence[str]) -> torch.Tensor:
        """``(P, C, D)`` L2-normalised embeddings of every template filled with every class name.

        Templates are checked (exactly one ``{}``) and encoded the first time they are asked for; a template
        made only of unknown words is refused by the model's tokenizer (ValueError).
        """
        missing = [t for t in dict.fromkeys(templates) if t not in self._text]
        for t in missing:
            texts = prompts.fill_templates([t], self.class_names)[0]
            self._text[t] = F.normalize(self.model.encode_text(texts).float(), dim=-1).cpu()
        if not templates:
            raise ValueError("templates must not be empty")
        return torch.stack([self._text[t] for t in templates])

    def logits(self, domain: str, templates: Sequence[str]) -> torch.Tensor:
        """``(N, P, C)`` per-prompt logits of ``domain``'s images (``s * <image, text>``)."""
        if domain not in self.images:
            raise ValueError(f"domain must be one of {', '.join(self.images)}; got {domain!r}")
        return prompts.prompt_logits(self.images[domain], self.text_embeddings(templates), self.logit_scale)

    def pretrain_logits(self, templates: Sequence[str]) -> torch.Tensor:
        """``(M, P, C)`` per-prompt logits of the pre-training sample."""
        return prompts.prompt_logits(self.pretrain, self.text_embeddings(templates), self.logit_scale)
