"""``rsfm.create_model``: build a task model from a backbone name, a head and a neck.

>>> model = rsfm.create_model("segmentation", "prithvi_eo_v2_300m", head="deeplabv3plus", num_classes=2,
...                           bands=["B02", "B03", "B04", "B8A", "B11", "B12"], window_size=14)
>>> model = rsfm.create_model(ModelConfig(task="detection", backbone="dofa_base", head="faster_rcnn", num_classes=3))
>>> model = rsfm.create_model({"task": "classification", "backbone": "resnet50", "head": "classification",
...                            "num_classes": 10})

Window attention (ViTDet, ``window_size=ws``): in every block except ``global_blocks`` (default:
the last block of each quarter of the depth), patch tokens attend only within non-overlapping
``ws x ws`` spatial token windows, no shift. For Prithvi multi-temporal input a window spans the
same ``ws x ws`` spatial block in all ``T`` frames (``T * ws * ws`` tokens). The cls token is a key
in every window and itself attends globally. Grids that are not a multiple of ``ws`` are padded
inside the block and the padding is masked out. No parameters are added; positional embeddings are
added on the full grid before the blocks.
"""

from __future__ import annotations

import dataclasses
import logging
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from rsfm.config import TASKS, ModelConfig, NeckConfig
from rsfm.errors import ConfigError
from rsfm.models.model import RsfmModel

__all__ = ["build_model", "config_from_dict", "create_model"]

log = logging.getLogger(__name__)

_DEEPLAB = ("deeplabv3", "deeplabv3plus")


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_tuple_type(tp: Any) -> bool:
    """True for ``tuple[...]`` and ``tuple[...] | None``."""
    if typing.get_origin(tp) is tuple:
        return True
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return any(typing.get_origin(a) is tuple for a in typing.get_args(tp))
    return False


def _dataclass_from_dict(cls: type, data: Mapping[str, Any], where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed keys: {sorted(fields)}.")
    required = [n for n, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [n for n in required if n not in data]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {missing}.")
    hints = _field_types(cls)
    values: dict[str, Any] = {}
    for name, value in data.items():
        tp = hints[name]
        if _is_tuple_type(tp) and value is not None:
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise ConfigError(f"{where}.{name} must be a list, got {value!r}.")
            value = tuple(value)
        values[name] = value
    return cls(**values)


def config_from_dict(data: Mapping[str, Any]) -> ModelConfig:
    """Validate a plain dict (e.g. a recipe's ``model:`` section) into a :class:`ModelConfig`.

    Raises:
        ConfigError: unknown or missing keys, or values of the wrong kind.
    """
    data = dict(data)
    neck = data.get("neck")
    if isinstance(neck, str):
        data["neck"] = NeckConfig(kind=neck)  # type: ignore[arg-type]
    elif isinstance(neck, Mapping):
        data["neck"] = _dataclass_from_dict(NeckConfig, neck, "model.neck")
    elif neck is not None and not isinstance(neck, NeckConfig):
        raise ConfigError(f"model.neck must be a kind name or a mapping, got {neck!r}.")
    for key in ("head_kwargs", "backbone_kwargs"):
        if key in data and not isinstance(data[key], Mapping):
            raise ConfigError(f"model.{key} must be a mapping, got {data[key]!r}.")
        if key in data:
            data[key] = dict(data[key])
    return _dataclass_from_dict(ModelConfig, data, "model")


def _validate(cfg: ModelConfig) -> None:
    if cfg.task not in TASKS:
        raise ConfigError(f"task={cfg.task!r}; allowed: {sorted(TASKS)}.")
    if cfg.head not in TASKS[cfg.task]:
        owner = [t for t, heads in TASKS.items() if cfg.head in heads]
        hint = f" ({cfg.head!r} is a {owner[0]} head)" if owner else ""
        raise ConfigError(f"head={cfg.head!r} does not fit task={cfg.task!r}{hint}; allowed heads: {list(TASKS[cfg.task])}.")
    if isinstance(cfg.num_classes, bool) or not isinstance(cfg.num_classes, int) or cfg.num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {cfg.num_classes!r}.")
    if cfg.classes is not None and len(cfg.classes) != cfg.num_classes:
        raise ConfigError(f"classes has {len(cfg.classes)} names but num_classes={cfg.num_classes}.")
    if cfg.temporal_reduction not in ("mean", "concat"):
        raise ConfigError(f"temporal_reduction={cfg.temporal_reduction!r}; allowed: ['mean', 'concat'].")
    if not isinstance(cfg.neck, NeckConfig):
        raise ConfigError(f"neck must be a NeckConfig, got {cfg.neck!r}.")


def build_model(cfg: ModelConfig) -> RsfmModel:
    """Build the model a validated :class:`ModelConfig` describes."""
    from rsfm.models.heads.classification import ClassificationHead
    from rsfm.models.heads.detection import build_detector
    from rsfm.models.heads.segmentation import build_segmentation_head
    from rsfm.models.necks import build_neck, resolve_neck_kind
    from rsfm.registry import backbone_card, create_backbone

    _validate(cfg)
    family = backbone_card(cfg.backbone).family
    extra: dict[str, Any] = dict(cfg.backbone_kwargs)
    if cfg.output_stride is not None:
        if family != "resnet":
            raise ConfigError(f"output_stride applies to ResNet backbones; {cfg.backbone!r} is a {family} model.")
        extra["output_stride"] = cfg.output_stride
    basic_block = family == "resnet" and backbone_card(cfg.backbone).arch.get("depth", 50) < 50
    if family == "resnet" and extra.get("output_stride", 32) != 32 and basic_block:
        # torchvision's BasicBlock (ResNet-18/34) cannot dilate.
        raise ConfigError(f"output_stride={extra['output_stride']}: {cfg.backbone!r} uses BasicBlocks, which "
                          "cannot be dilated; use output_stride=32 (or None) or a ResNet-50/101.")
    if family == "resnet" and cfg.head in _DEEPLAB and "output_stride" not in extra and not basic_block:
        extra["output_stride"] = 16  # DeepLab's usual setting: dilate the last stage
        log.info("%s with %s: ResNet output_stride=16 (dilated layer4)", cfg.head, cfg.backbone)
    if cfg.task == "detection" and cfg.num_frames > 1:
        raise ConfigError("Detection takes single images (num_frames=1); torchvision's detection transform "
                          "pads (C, H, W) images only.")
    backbone = create_backbone(
        cfg.backbone, pretrained=cfg.pretrained, weights=cfg.weights, bands=cfg.bands,
        wavelengths=cfg.wavelengths, num_frames=cfg.num_frames, window_size=cfg.window_size or None,
        global_blocks=cfg.global_blocks, out_indices=cfg.out_indices, **extra,
    )
    kind = resolve_neck_kind(cfg.neck.kind, backbone, cfg.task)
    # Detectors use a stride-64 level (P6), as torchvision's and ViTDet's reference detectors do.
    wants64 = kind == "fpn" or (kind == "simple_feature_pyramid" and 0.5 in cfg.neck.scale_factors)
    extra64 = cfg.neck.extra_stride64 or (cfg.task == "detection" and wants64)
    neck = build_neck(kind, backbone, task=cfg.task, out_channels=cfg.neck.out_channels,
                      scale_factors=cfg.neck.scale_factors, extra_stride64=extra64,
                      temporal_reduction=cfg.temporal_reduction)
    log.debug("%s: backbone %s, neck %s (strides %s), head %s", cfg.task, cfg.backbone, kind, neck.out_strides, cfg.head)
    head_kwargs = dict(cfg.head_kwargs)
    head: nn.Module
    if cfg.task == "segmentation":
        head = build_segmentation_head(cfg.head, neck.out_channels, neck.out_strides, cfg.num_classes, **head_kwargs)
    elif cfg.task == "classification":
        from rsfm.models.heads import check_kwargs

        check_kwargs(ClassificationHead, cfg.head, head_kwargs, skip=("in_channels", "num_classes"))
        head = ClassificationHead(neck.out_channels, cfg.num_classes, **head_kwargs)
    else:
        patch = getattr(backbone, "patch_size", None)
        head_kwargs.setdefault("size_divisible", 2 * patch if patch else 32)
        head = build_detector(cfg.head, neck.out_channels, neck.out_strides, cfg.num_classes, **head_kwargs)
    return RsfmModel(backbone, neck, head, cfg)


def create_model(
    config_or_task: ModelConfig | Mapping[str, Any] | str | None = None,
    backbone: str | None = None,
    /,
    *,
    head: str | None = None,
    num_classes: int | None = None,
    bands: Sequence[str] | None = None,
    neck: str | NeckConfig | Mapping[str, Any] = "auto",
    pretrained: bool = False,
    window_size: int | None = None,
    global_blocks: Sequence[int] | None = None,
    freeze_backbone: bool = False,
    weights: str | None = None,
    wavelengths: Sequence[float] | None = None,
    num_frames: int = 1,
    temporal_reduction: str = "concat",
    out_indices: Sequence[int] | None = None,
    output_stride: int | None = None,
    backbone_kwargs: Mapping[str, Any] | None = None,
    classes: Sequence[str] | None = None,
    **head_kwargs: Any,
) -> RsfmModel:
    """Build a segmentation, detection or classification model.

    Call it with a :class:`~rsfm.config.ModelConfig`, a dict with the same keys (a recipe's
    ``model:`` section), or ``create_model(task, backbone, head=..., num_classes=..., ...)``.

    Args:
        config_or_task: A ``ModelConfig``, a dict, or the task name (``segmentation``,
            ``detection``, ``classification``).
        backbone: Backbone name (``rsfm.list_backbones()``) in the keyword form.
        head: Head for the task (``rsfm.config.TASKS``).
        num_classes: Classes (detection: without background; labels are 1..K).
        bands: Input band names (default: the backbone card's).
        neck: ``auto`` (ViT: simple feature pyramid; ResNet: stages, FPN for detection;
            classification: none), a kind name, a ``NeckConfig`` or a dict of its fields.
        pretrained: Load the backbone's official weights.
        window_size: ViT window attention in tokens (14 for 16-px patches is the ViTDet choice);
            None or 0 = global attention.
        global_blocks: ViT blocks that keep global attention (default: last of each quarter).
        freeze_backbone: Start with the backbone frozen.
        weights: Local path or ``hf://`` URL of backbone weights.
        wavelengths: DOFA: wavelengths (micrometres) for bands the catalog lacks.
        num_frames: Prithvi frames per sample (input ``(B, C, T, H, W)``).
        temporal_reduction: ``mean`` or ``concat`` (+ 1x1 projection) of the frames' features.
        out_indices: Backbone blocks/stages to tap.
        output_stride: ResNet dilation (8, 16, 32; DeepLab heads default to 16).
        backbone_kwargs: Architecture overrides for ``create_backbone`` (tiny test models).
        classes: Class names kept with the model.
        **head_kwargs: Head options, e.g. ``aux_head``, ``aspp_rates``, ``decoder_channels``,
            ``anchor_sizes``, ``aspect_ratios``, ``min_size``, ``box_score_thresh``.

    Returns:
        An :class:`~rsfm.models.model.RsfmModel` with ``backbone``, ``neck``, ``head``, ``config``.

    Raises:
        ConfigError: a bad argument (names it and the allowed values).
    """
    if isinstance(config_or_task, (ModelConfig, Mapping)):
        passed = {k: v for k, v in {
            "backbone": backbone, "head": head, "num_classes": num_classes, "bands": bands,
            "window_size": window_size, "global_blocks": global_blocks, "weights": weights,
            "wavelengths": wavelengths, "out_indices": out_indices, "output_stride": output_stride,
            "backbone_kwargs": backbone_kwargs, "classes": classes,
        }.items() if v is not None}
        if neck != "auto":
            passed["neck"] = neck
        if pretrained or freeze_backbone or num_frames != 1 or temporal_reduction != "concat":
            passed["pretrained/freeze_backbone/num_frames/temporal_reduction"] = True
        passed.update(head_kwargs)
        if passed:
            raise ConfigError(f"create_model(config) takes no other arguments; got {sorted(passed)}. "
                              "Put them in the config (or use dataclasses.replace).")
        cfg = config_or_task if isinstance(config_or_task, ModelConfig) else config_from_dict(config_or_task)
        return build_model(cfg)
    if not isinstance(config_or_task, str) or backbone is None:
        raise ConfigError(
            "create_model needs a ModelConfig, a dict, or (task, backbone, head=..., num_classes=...); "
            f"got task={config_or_task!r}, backbone={backbone!r}. Tasks: {sorted(TASKS)}."
        )
    if head is None:
        raise ConfigError(f"create_model: head= is required; heads for {config_or_task!r}: "
                          f"{list(TASKS.get(config_or_task, ()))}.")
    if num_classes is None:
        raise ConfigError("create_model: num_classes= is required.")
    data: dict[str, Any] = {
        "task": config_or_task, "backbone": backbone, "head": head, "num_classes": num_classes,
        "bands": bands, "wavelengths": wavelengths, "pretrained": pretrained, "weights": weights,
        "num_frames": num_frames, "temporal_reduction": temporal_reduction, "window_size": window_size,
        "global_blocks": global_blocks, "out_indices": out_indices, "output_stride": output_stride,
        "freeze_backbone": freeze_backbone, "neck": neck, "head_kwargs": head_kwargs,
        "backbone_kwargs": dict(backbone_kwargs or {}), "classes": classes,
    }
    return build_model(config_from_dict(data))
