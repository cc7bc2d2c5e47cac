"""Model family (MLPs and small CNNs with MAC counts) and stacked K-member ensembles."""

from .family import FAMILY, ModelSpec, build_model, get_spec, layer_plan, macs, member_seed
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
]
