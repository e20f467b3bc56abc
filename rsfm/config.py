"""Typed model configuration: what builds a model (``ModelConfig``) and how LoRA adapts it.

Stdlib frozen dataclasses: models never import pydantic. The same classes are validated by
pydantic at the YAML / ``config.json`` boundary (``extra: forbid`` turns a misspelt key into an
error naming it), and each class checks its own values in ``__post_init__``: that one validator
runs for recipes, saved configs and direct construction alike.

The bands, wavelengths and classes written here are what the user *stated*; they are resolved
once, with the backbone card and the data section, into an :class:`rsfm.spec.InputSpec`, which is
what every consumer reads.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from rsfm.errors import ConfigError

__all__ = [
    "AUGMENTATIONS",
    "HEADS",
    "HEAD_OPTIONS",
    "TASKS",
    "BandDecl",
    "ClassDecl",
    "LoraSettings",
    "ModelConfig",
    "NeckConfig",
    "freeze_sequences",
    "is_wavelength",
    "wavelength_problem",
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
_SEG_AUX = ("aux_head", "aux_index")
_DET_OWN = ("anchor_sizes", "aspect_ratios", "min_size", "max_size", "size_divisible")
_RCNN = (
    "rpn_pre_nms_top_n_train", "rpn_pre_nms_top_n_test", "rpn_post_nms_top_n_train",
    "rpn_post_nms_top_n_test", "rpn_nms_thresh", "rpn_fg_iou_thresh", "rpn_bg_iou_thresh",
    "rpn_batch_size_per_image", "rpn_positive_fraction", "rpn_score_thresh", "rpn_head",
    "box_score_thresh", "box_nms_thresh", "box_detections_per_img", "box_fg_iou_thresh",
    "box_bg_iou_thresh", "box_batch_size_per_image", "box_positive_fraction", "bbox_reg_weights",
    "box_head", "box_predictor",
)
# The options of each head (model.head_kwargs; torch-free, so `rsfm check` reads the same table
# as the builders). Segmentation and classification: the keyword arguments of rsfm's head classes
# (a test keeps both equal). Detection: rsfm's anchors and batch padding,
# then torchvision's detector options (less those rsfm sets: backbone, num_classes, image_mean,
# image_std, the anchor generators and the RoI pools).
HEAD_OPTIONS: dict[str, tuple[str, ...]] = {
    "deeplabv3": ("aspp_rates", "aspp_channels", *_SEG_AUX),
    "deeplabv3plus": ("aspp_rates", "aspp_channels", "low_level_channels", "separable", *_SEG_AUX),
    "unet": ("decoder_channels", *_SEG_AUX),
    "fcn": _SEG_AUX,
    "classification": ("pool", "dropout"),
    "faster_rcnn": (*_DET_OWN, *_RCNN),
    "mask_rcnn": (*_DET_OWN, *_RCNN, "mask_head", "mask_predictor"),
    "retinanet": (*_DET_OWN, "score_thresh", "nms_thresh", "detections_per_img", "fg_iou_thresh",
                  "bg_iou_thresh", "topk_candidates", "head", "proposal_matcher"),
    "fcos": (*_DET_OWN, "center_sampling_radius", "score_thresh", "nms_thresh",
             "detections_per_img", "topk_candidates", "head"),
}
# The recipe's data.augment keys (rsfm.data.transforms builds them; a test keeps both equal).
AUGMENTATIONS = ("hflip", "vflip", "rot90", "resized_crop", "band_jitter", "noise", "haze")
FORBID: dict[str, Any] = {"extra": "forbid"}


def freeze_sequences(obj: Any, *names: str) -> None:
    """Turn list values of the named fields of a frozen dataclass into tuples (hashable, and the
    same value whether it came from YAML or from Python)."""
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, list):
            object.__setattr__(obj, name, tuple(value))


def is_wavelength(value: Any) -> bool:
    """True for a central wavelength in micrometres: a finite number > 0 (not a bool)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def wavelength_problem(values: Any) -> str | None:
    """Why ``values`` are not wavelengths (one per band: finite numbers > 0, micrometres), or None.

    The one rule for every wavelength a user gives: a declared band's, ``model.wavelengths``,
    ``create_backbone(wavelengths=...)``.
    """
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        return f"must be a list of wavelengths in micrometres, one per band (got {values!r})"
    values = list(values)
    bad = [v for v in values if not is_wavelength(v)]
    if bad:
        return (f"wavelength {bad[0]!r} in {list(values)} is not a finite number > 0 "
                "(micrometres)")
    return None


def check(ok: bool, key: str, message: str) -> None:
    """Raise :class:`ConfigError` naming ``key`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key}: {message}", key=key)


@dataclass(frozen=True)
class BandDecl:
    """A band written as a mapping: a layer the catalog lacks, or a catalog band with its own
    wavelength. ``{name: DEM, wavelength: null, description: "SRTM elevation, m"}``.

    Attributes:
        name: The band's name (as in the files' band descriptions or ``file_bands``).
        wavelength: Central wavelength in micrometres, or ``None`` (elevation, QA, masks).
            DOFA needs one for every band.
        description: Free text shown in reports and model cards.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    name: str
    wavelength: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        check(bool(self.name and self.name.strip()), "name", "must be a non-empty band name")
        check(self.wavelength is None or is_wavelength(self.wavelength), "wavelength",
              f"must be a finite number > 0 (micrometres) or null (got {self.wavelength!r})")


@dataclass(frozen=True)
class ClassDecl:
    """A class written as a mapping: ``{name: water, color: "#1f78b4"}`` (colour for maps,
    plots and the class raster's colour table)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    name: str
    color: str | tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        freeze_sequences(self, "color")
        check(bool(self.name and self.name.strip()), "name", "must be a non-empty class name")


@dataclass(frozen=True)
class NeckConfig:
    """The multi-scale neck between backbone and head.

    ``kind="auto"`` picks the simple feature pyramid for ViTs and the backbone's own stages for
    ResNets.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    kind: Literal["auto", "simple_feature_pyramid", "stages", "fpn", "none"] = "auto"
    out_channels: int = 256
    scale_factors: tuple[float, ...] = (4.0, 2.0, 1.0, 0.5)
    extra_stride64: bool = False

    def __post_init__(self) -> None:
        freeze_sequences(self, "scale_factors")
        kinds = ("auto", "simple_feature_pyramid", "stages", "fpn", "none")
        check(self.kind in kinds, "kind", f"{self.kind!r} is not one of {list(kinds)}")
        check(self.out_channels >= 1, "out_channels", f"must be >= 1 (got {self.out_channels})")
        check(all(s > 0 for s in self.scale_factors), "scale_factors",
              f"must be positive (got {list(self.scale_factors)})")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model (also the recipe's ``model:`` section).

    Attributes:
        task: ``segmentation``, ``detection`` or ``classification``.
        backbone: A registered backbone name (``rsfm.list_backbones()``).
        head: Head kind; must belong to ``task`` (see ``TASKS``).
        num_classes: Number of classes (detection: without background).
        bands: Input bands (names, or ``{name, wavelength, description}`` for layers the catalog
            lacks); None = the backbone card's pretraining bands. May instead be given as
            ``data.bands`` in a recipe (not both, unless they agree).
        wavelengths: Wavelengths (micrometres) for the bands, one per band (DOFA).
        pretrained: Load the backbone's official weights.
        weights: Local path or ``hf://`` URL of backbone weights instead of the card's file.
        num_frames: Prithvi multi-temporal input frames.
        temporal_reduction: How frames are merged before the neck: ``mean`` or ``concat``.
        window_size: ViT window attention (tokens per side); None/0 = global attention.
        window_mode: ``cls`` (each window also sees the cls token, which attends globally; rsfm
            0.1) or ``vitdet`` (windows of patch tokens only, as in ViTDet).
        global_blocks: ViT blocks that keep global attention (None = last of each quarter).
        out_indices: Backbone blocks/stages to tap (None = family default).
        output_stride: ResNet dilation for DeepLab (8, 16 or 32).
        freeze_backbone: Start with the backbone frozen.
        neck: Neck settings.
        head_kwargs: Head-specific options (e.g. ``aspp_rates``, ``anchor_sizes``, ``aux_head``).
        backbone_kwargs: Architecture overrides passed to ``create_backbone`` (tiny test models).
        classes: Optional class names (or ``{name, color}``); may instead be ``data.classes``.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    task: Task
    backbone: str
    head: HeadKind
    num_classes: int
    bands: tuple[str | BandDecl, ...] | None = None
    wavelengths: tuple[float, ...] | None = None
    pretrained: bool = False
    weights: str | None = None
    num_frames: int = 1
    temporal_reduction: Literal["mean", "concat"] = "concat"
    window_size: int | None = None
    window_mode: Literal["cls", "vitdet"] = "cls"
    global_blocks: tuple[int, ...] | None = None
    out_indices: tuple[int, ...] | None = None
    output_stride: int | None = None
    freeze_backbone: bool = False
    neck: NeckConfig = field(default_factory=NeckConfig)
    head_kwargs: dict[str, Any] = field(default_factory=dict)
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    classes: tuple[str | ClassDecl, ...] | None = None

    def __post_init__(self) -> None:
        freeze_sequences(self, "bands", "wavelengths", "global_blocks", "out_indices", "classes")
        if isinstance(self.neck, str):  # create_model(neck="fpn")
            object.__setattr__(self, "neck", NeckConfig(kind=self.neck))  # type: ignore[arg-type]
        check(self.task in TASKS, "task", f"{self.task!r} is not one of {sorted(TASKS)}")
        if self.head not in TASKS[self.task]:
            owner = [t for t, heads in TASKS.items() if self.head in heads]
            hint = f" ({self.head!r} is a {owner[0]} head)" if owner else ""
            check(False, "head", f"{self.head!r} does not fit task {self.task!r}{hint}; "
                                 f"{self.task} heads: {list(TASKS[self.task])}")
        check(isinstance(self.num_classes, int) and not isinstance(self.num_classes, bool)
              and self.num_classes >= 1, "num_classes",
              f"must be a positive integer (got {self.num_classes!r})")
        if self.classes is not None:
            check(len(self.classes) == self.num_classes, "classes",
                  f"{len(self.classes)} names but num_classes is {self.num_classes}")
        check(self.bands is None or len(self.bands) > 0, "bands",
              "is an empty list: list the bands, or leave the key out")
        if isinstance(self.bands, str):
            check(False, "bands", f"must be a list of band names, e.g. [{self.bands!r}]")
        if self.wavelengths is not None:
            problem = wavelength_problem(self.wavelengths)
            check(problem is None, "wavelengths", str(problem))
        if self.wavelengths is not None and self.bands is not None:
            check(len(self.wavelengths) == len(self.bands), "wavelengths",
                  f"{len(self.wavelengths)} values for {len(self.bands)} bands")
        check(self.num_frames >= 1, "num_frames", f"must be >= 1 (got {self.num_frames})")
        check(self.temporal_reduction in ("mean", "concat"), "temporal_reduction",
              f"{self.temporal_reduction!r} is not 'mean' or 'concat'")
        check(self.task != "detection" or self.num_frames == 1, "num_frames",
              "detection takes single images (num_frames=1): torchvision's detection transform "
              "pads (C, H, W) images only")
        check(self.output_stride in (None, 8, 16, 32), "output_stride",
              f"must be 8, 16 or 32 (got {self.output_stride!r})")
        check(self.window_size is None or self.window_size >= 0, "window_size",
              f"must be >= 0 (got {self.window_size})")
        check(self.window_mode in ("cls", "vitdet"), "window_mode",
              f"{self.window_mode!r} is not 'cls' or 'vitdet'")
        check(not (self.pretrained and self.weights), "weights",
              "give either pretrained: true (the card's checkpoint) or weights: <file>, not both")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return asdict(self)


@dataclass(frozen=True)
class LoraSettings:
    """LoRA through peft (the recipe's ``lora:`` section, also kept in ``config.json``).

    ``target_modules`` None = the backbone card's ``lora_targets``.
    """

    __pydantic_config__: ClassVar[dict[str, Any]] = FORBID
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    target_modules: tuple[str, ...] | None = None
    bias: Literal["none", "all", "lora_only"] = "none"

    def __post_init__(self) -> None:
        freeze_sequences(self, "target_modules")
        check(self.r >= 1, "r", f"must be >= 1 (got {self.r})")
        check(self.alpha > 0, "alpha", f"must be > 0 (got {self.alpha}); the LoRA update is "
                                       "scaled by alpha / r (peft's lora_alpha)")
        check(0 <= self.dropout < 1, "dropout", f"must be in [0, 1) (got {self.dropout})")
