"""Model family (MLPs and small CNNs with MAC counts), stacked K-member ensembles, and MiniCLIP (a small
text-image model shipped with the package; real CLIP through ``clip_adapter``)."""

from .family import FAMILY, ModelSpec, build_model, get_spec, layer_plan, macs, member_seed
from .miniclip import MiniCLIP, WordTokenizer, load_miniclip
from .stacked import StackedConv2d, StackedEnsemble, StackedLinear

__all__ = [
    "FAMILY",
    "ModelSpec",
    "build_model",
    "get_spec",
    "layer_plan",
    "macs",
    "member_seed",
    "StackedEnsemble",
    "StackedLinear",
    "StackedConv2d",
    "MiniCLIP",
    "WordTokenizer",
    "load_miniclip",
]
