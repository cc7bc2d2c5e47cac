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
from .._validation import check_bool, check_finite_tensor, check_labels, check_positive, check_strings

__all__ = ["ZeroShotData"]

_INTERFACE = ("encode_image", "encode_text", "unknown_words")


def _check_model(model):
    """A text-image model with MiniCLIP's interface (three methods and a ``logit_scale``)."""
    missing = [m for m in _INTERFACE if not callable(getattr(model, m, None))]
    if missing or not hasattr(model, "logit_scale"):
        need = ", ".join(missing) if missing else "logit_scale"
        raise TypeError(
            "model must be a text-image model with encode_image, encode_text, unknown_words and logit_scale "
            f"(e.g. load_miniclip()), got {type(model).__name__} without {need}"
        )
    return model


class ZeroShotData:
    """Cached embeddings of ``model`` on ``domains`` and ``pretrain_images``.

    Args:
        model: a text-image model (see the module docstring).
        domains: domain name -> dataset with ``images`` ``(N, ch, H, W)`` and ``labels`` ``(N,)``.
        pretrain_images: ``(M, ch, H, W)`` sample of the model's pre-training images.
        class_names: the C class names the templates are filled with (a list or tuple of str; every word must
            be known to the model, or it would be skipped silently and the class lose its name).
        progress: show a progress bar while encoding the images.
    """

    def __init__(self, model, domains: Mapping, pretrain_images, class_names: Sequence[str], progress: bool = True):
        model = _check_model(model)
        if not isinstance(domains, Mapping):
            raise TypeError(
                "domains must be a dict of domain name -> dataset (with images and labels), "
                f"got {type(domains).__name__}"
            )
        if not domains:
            raise ValueError("domains must name at least one zero-shot test set, got an empty mapping")
        for name, ds in domains.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"domains must be keyed by non-empty domain names (str), got the key {name!r}")
            if not (hasattr(ds, "images") and hasattr(ds, "labels")):
                raise TypeError(
                    f"domains[{name!r}] must be a dataset with images and labels (an ImageDataset), "
                    f"got {type(ds).__name__}"
                )
        class_names = check_strings(class_names, "class_names")
        for i, c in enumerate(class_names):
            unknown = list(model.unknown_words(c))
            if unknown:
                raise ValueError(
                    f"class_names[{i}] = {c!r} has words the model does not know ({', '.join(map(repr, unknown))}): "
                    "they would be skipped silently when the templates are encoded"
                )
        progress = check_bool(progress, "progress")
        self.model = model
        self.class_names = tuple(class_names)
        self.logit_scale = check_positive(model.logit_scale, "model.logit_scale")
        bar = tqdm(total=len(domains) + 1, desc="encoding images", unit="set", disable=not progress)
        self.images: dict[str, torch.Tensor] = {}
        self.labels: dict[str, torch.Tensor] = {}
        try:
            for name, ds in domains.items():
                self.images[name] = self._encode_images(ds.images, f"domains[{name!r}].images")
                n = self.images[name].shape[0]
                self.labels[name] = check_labels(ds.labels, n, len(class_names), f"domains[{name!r}].labels")
                bar.update(1)
            self.pretrain = self._encode_images(pretrain_images, "pretrain_images")
            bar.update(1)
        finally:
            bar.close()
        self._text: dict[str, torch.Tensor] = {}

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(self.images)

    @torch.no_grad()
    def _encode_images(self, images, name: str) -> torch.Tensor:
        """L2-normalised float32 CPU embeddings of ``images``; the model's refusal is re-raised naming ``name``."""
        try:
            emb = self.model.encode_image(images)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name} cannot be encoded by the model: {exc}") from exc
        if not isinstance(emb, torch.Tensor) or emb.ndim != 2 or emb.shape[0] < 1:
            got = tuple(emb.shape) if isinstance(emb, torch.Tensor) else type(emb).__name__
            raise ValueError(f"{name}: the model's encode_image must return (N, D) embeddings, got {got}")
        check_finite_tensor(emb, f"the model's embeddings of {name}")
        return F.normalize(emb.float(), dim=-1).cpu()

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
        templates = check_strings(templates, "templates")
        for i, t in enumerate(templates):
            prompts.check_template(t, f"templates[{i}]")
        missing = [t for t in dict.fromkeys(templates) if t not in self._text]
        for t in missing:
            texts = prompts.fill_templates([t], self.class_names)[0]
            self._text[t] = F.normalize(self.model.encode_text(texts).float(), dim=-1).cpu()
        return torch.stack([self._text[t] for t in templates])

    def logits(self, domain: str, templates: Sequence[str]) -> torch.Tensor:
        """``(N, P, C)`` per-prompt logits of ``domain``'s images (``s * <image, text>``)."""
        if not isinstance(domain, str):
            raise TypeError(f"domain must be a str, one of {', '.join(self.images)}; got {type(domain).__name__}")
        if domain not in self.images:
            raise ValueError(f"domain must be one of {', '.join(self.images)}; got {domain!r}")
        return prompts.prompt_logits(self.images[domain], self.text_embeddings(templates), self.logit_scale)

    def pretrain_logits(self, templates: Sequence[str]) -> torch.Tensor:
        """``(M, P, C)`` per-prompt logits of the pre-training sample."""
        return prompts.prompt_logits(self.pretrain, self.text_embeddings(templates), self.logit_scale)
