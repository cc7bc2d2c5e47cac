"""A tiny :class:`~ensemble_lab.artefacts.soup_world.SoupWorld` (built in well under a second) for the soups Lab tests.

Same names, splits and alphas as the real world; the model is a linear encoder on 4x4 images, and each
ingredient is the zero-shot state plus a seeded perturbation (the lr 1e-2 endpoints a large one, so that
interpolating to them breaks as in the real world).
"""

import torch

from ensemble_lab.artefacts.soup_world import INGREDIENTS, SPLITS, ZERO_SHOT, assemble_world
from ensemble_lab.models.clip_classifier import ClipClassifier

C = 10


def tiny_world(seed: int = 0, n: int = 60):
    g = torch.Generator().manual_seed(seed)
    visual = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 12), torch.nn.ReLU(), torch.nn.Linear(12, 8))
    torch.manual_seed(seed)
    model = ClipClassifier(visual, 5.0 * torch.randn(C, 8, generator=g)).eval()
    zero = {k: v.detach().clone() for k, v in model.state_dict().items()}
    states = {ZERO_SHOT: zero}
    for _i, (name, recipe) in enumerate(INGREDIENTS.items()):
        size = 2.0 if recipe.lr >= 1e-2 else 0.05
        states[name] = {k: v + size * torch.randn(v.shape, generator=g) for k, v in zero.items()}
    prototypes = torch.rand(C, 1, 4, 4, generator=g)
    images, labels = {}, {}
    for _j, split in enumerate(SPLITS):
        y = torch.randint(0, C, (n,), generator=g)
        noise = 0.1 if split in ("val", "test") else 0.3
        images[split] = (prototypes[y] + noise * torch.randn(n, 1, 4, 4, generator=g)).clamp(0, 1)
        labels[split] = y
    # the zero-shot head: class prototypes' features (no labels of the target needed)
    with torch.no_grad():
        head = 5.0 * model.features(prototypes)
    for sd in states.values():
        sd["head.weight"] = sd["head.weight"] * 0.1 + head
    return assemble_world(model, states, dict(INGREDIENTS), images, labels)
