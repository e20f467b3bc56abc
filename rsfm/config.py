"""Typed model configuration, shared by ``rsfm.create_model``, recipes and ``config.json``.

Stdlib frozen dataclasses: models never import pydantic. Recipes validate these same classes with
pydantic at the YAML boundary (``extra: forbid`` turns a misspelt key into an error naming it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

__all__ = [
    "HEADS",
    "TASKS",
    "ModelConfig",
    "NeckConfig",
]

Task = Literal["segmentation", "detection", "classification"]
HeadKind = Literal[
    "deeplabv3", "deeplabv3plus", "unet", "fcn", "classification",
    "faster_rcnn", "retinanet", "fcos", "mask_rcnn",
]
TASKS: dict[str, tuple[str, ...]] = {
    "segmentation": ("deeplabv3", "deeplabv3plus", "unet", "fcn"),
    "detection": ("faster_rcnn", "retinanet", "fcos", "mask_rcnn"),
    "classification": ("classification",),
}
HEADS = tuple(h for heads in TASKS.values() for h in heads)
_FORBID: dict[str, Any] = {"extra": "forbid"}


@dataclass(frozen=True)
class NeckConfig:
    """The multi-scale neck between backbone and head.

    ``kind="auto"`` picks the simple feature pyramid for ViTs and the backbone's own stages for
    ResNets.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID
    kind: Literal["auto", "simple_feature_pyramid", "stages", "fpn", "none"] = "auto"
    out_channels: int = 256
    scale_factors: tuple[float, ...] = (4.0, 2.0, 1.0, 0.5)
    extra_stride64: bool = False


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model (also the recipe's ``model:`` section).

    Attributes:
        task: ``segmentation``, ``detection`` or ``classification``.
        backbone: A registered backbone name (``rsfm.list_backbones()``).
        head: Head kind; must belong to ``task`` (see ``TASKS``).
        num_classes: Number of classes (detection: without background).
        bands: Input band names; None = the backbone card's pretraining bands.
        wavelengths: DOFA only: wavelengths (micrometres) for bands the catalog lacks.
        pretrained: Load the backbone's official weights.
        weights: Local path or ``hf://`` URL of backbone weights instead of the card's file.
        num_frames: Prithvi multi-temporal input frames.
        temporal_reduction: How frames are merged before the neck: ``mean`` or ``concat``.
        window_size: ViT window attention (tokens per side); None/0 = global attention.
        global_blocks: ViT blocks that keep global attention (None = last of each quarter).
        out_indices: Backbone blocks/stages to tap (None = family default).
        output_stride: ResNet dilation for DeepLab (8, 16 or 32).
        freeze_backbone: Start with the backbone frozen.
        neck: Neck settings.
        head_kwargs: Head-specific options (e.g. ``aspp_rates``, ``anchor_sizes``, ``aux_head``).
        backbone_kwargs: Architecture overrides passed to ``create_backbone`` (tiny test models).
        classes: Optional class names (kept with the model for plots, rasters and the Hub card).
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = _FORBID
    task: Task
    backbone: str
    head: HeadKind
    num_classes: int
    bands: tuple[str, ...] | None = None
    wavelengths: tuple[float, ...] | None = None
    pretrained: bool = False
    weights: str | None = None
    num_frames: int = 1
    temporal_reduction: Literal["mean", "concat"] = "concat"
    window_size: int | None = None
    global_blocks: tuple[int, ...] | None = None
    out_indices: tuple[int, ...] | None = None
    output_stride: int | None = None
    freeze_backbone: bool = False
    neck: NeckConfig = field(default_factory=NeckConfig)
    head_kwargs: dict[str, Any] = field(default_factory=dict)
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    classes: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return asdict(self)
