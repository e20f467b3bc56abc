"""``rsfm.create_model``: a task model from a backbone name, a neck and a head, sized by an InputSpec.

>>> model = rsfm.create_model("segmentation", "prithvi_eo_v2_300m", head="deeplabv3plus", num_classes=2,
...                           bands=["B02", "B03", "B04", "B8A", "B11", "B12"], window_size=14)
>>> model = rsfm.create_model(ModelConfig(task="detection", backbone="dofa_base", head="faster_rcnn", num_classes=3))
>>> model = rsfm.create_model({"task": "classification", "backbone": "resnet50", "head": "classification",
...                            "num_classes": 10})
>>> same = rsfm.create_model(model.config, input_spec=model.input_spec)  # the same architecture

What the model eats is an :class:`~rsfm.spec.InputSpec`: given (``input_spec=``, e.g. read from a
``config.json``), resolved from a recipe (``create_model(recipe)``), or resolved from the config's
own ``bands``/``wavelengths``/``classes`` and the backbone's card. The backbone is built for the
spec's channels (bands, then spectral-index channels) and frames.

:func:`check_model_config` makes every check that needs no model: ``rsfm check`` and the start of
training and prediction call it before any compute. It lives in :mod:`rsfm.modelcheck` (no torch)
and is re-exported here.

Window attention (ViTDet, ``window_size=ws``): in every block except ``global_blocks`` (default:
the last block of each quarter of the depth), patch tokens attend only within non-overlapping
``ws x ws`` spatial token windows, no shift. For Prithvi multi-temporal input a window spans the
same ``ws x ws`` spatial block in all ``T`` frames (``T * ws * ws`` tokens). The cls token is a key
in every window and itself attends globally. Grids that are not a multiple of ``ws`` are padded
inside the block and the padding is masked out. No parameters are added; positional embeddings are
added on the full grid before the blocks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from rsfm.cards import VIT_FAMILIES
from rsfm.config import TASKS, ModelConfig, NeckConfig
from rsfm.errors import ConfigError
from rsfm.modelcheck import (
    check_architecture,
    check_head_kwargs,
    check_model_config,
    model_arch,
    model_card,
    resolve_neck_kind,
    uses_basic_blocks,
)
from rsfm.models.heads.classification import ClassificationHead
from rsfm.models.heads.detection import build_detector
from rsfm.models.heads.segmentation import build_segmentation_head
from rsfm.models.model import RsfmModel
from rsfm.models.necks import build_neck
from rsfm.registry import create_backbone
from rsfm.schema import Recipe
from rsfm.spec import InputSpec, resolve_bands_stated, resolve_input_spec
from rsfm.validation import validate

__all__ = ["build_model", "check_model_config", "create_model"]

log = logging.getLogger(__name__)

_DEEPLAB = ("deeplabv3", "deeplabv3plus")


def build_model(config: ModelConfig, spec: InputSpec, *,
                model_class: type[RsfmModel] = RsfmModel) -> RsfmModel:
    """Build the model ``config`` describes for the input ``spec``.

    ``model_class`` is the class instantiated: :class:`RsfmModel`, or a subclass a higher layer
    adds behaviour to (``rsfm.hub.Model`` adds the Hub methods) without this module importing it.

    The backbone takes ``spec.channels`` (bands, then spectral-index channels; DOFA reads their
    wavelengths) and ``spec.num_frames``; pretrained filters are picked band by band
    (``model.load_report.bands``).

    ResNet defaults that depend on the head (applied on every build, not written into the config,
    so a saved model rebuilds the same way): DeepLab heads dilate ``layer4`` (output stride 16,
    ResNet-50/101); a UNet also taps the stride-2 stem map (``backbone_kwargs.stem``), which gives
    ``segmentation_models_pytorch``'s ``Unet`` layer for layer. Configs of rsfm 0.1, which had
    neither the stem level nor the separable DeepLabv3+ head, are pinned to their layout by
    :mod:`rsfm.saved`.

    Raises:
        ConfigError: An option the backbone cannot have (see :func:`check_model_config`).
    """
    card = model_card(config.backbone)
    check_architecture(config, card, spec)
    extra: dict[str, Any] = dict(config.backbone_kwargs)
    if config.output_stride is not None:
        extra["output_stride"] = config.output_stride
    if config.window_mode != "cls":
        extra["window_mode"] = config.window_mode
    if (card.family == "resnet" and config.head in _DEEPLAB and "output_stride" not in extra
            and not uses_basic_blocks(model_arch(config, card))):
        extra["output_stride"] = 16  # DeepLab's usual setting: dilate the last stage
        log.info("%s with %s: ResNet output_stride=16 (dilated layer4)", config.head, config.backbone)
    if card.family == "resnet" and config.head == "unet" and "stem" not in extra:
        # the stride-2 stem map is the UNet's full-detail skip: smp's Unet layer for layer
        extra["stem"] = True
        log.info("unet with %s: ResNet stem level (stride 2) as the last skip", config.backbone)
    backbone = create_backbone(
        config.backbone, pretrained=config.pretrained, weights=config.weights, bands=spec.channels,
        num_frames=spec.num_frames, window_size=config.window_size or None,
        global_blocks=config.global_blocks, out_indices=config.out_indices, **extra,
    )
    kind = resolve_neck_kind(config.neck.kind, card.family in VIT_FAMILIES, config.task)
    # Detectors use a stride-64 level (P6), as torchvision's and ViTDet's reference detectors do.
    wants64 = kind == "fpn" or (kind == "simple_feature_pyramid" and 0.5 in config.neck.scale_factors)
    extra64 = config.neck.extra_stride64 or (config.task == "detection" and wants64)
    neck = build_neck(kind, backbone, task=config.task, out_channels=config.neck.out_channels,
                      scale_factors=config.neck.scale_factors, extra_stride64=extra64,
                      temporal_reduction=config.temporal_reduction)
    log.debug("%s: backbone %s, neck %s (strides %s), head %s", config.task, config.backbone, kind,
              neck.out_strides, config.head)
    head_kwargs = dict(config.head_kwargs)
    head: nn.Module
    if config.task == "segmentation":
        head = build_segmentation_head(config.head, neck.out_channels, neck.out_strides,
                                       config.num_classes, **head_kwargs)
    elif config.task == "classification":
        check_head_kwargs(config.head, head_kwargs)
        head = ClassificationHead(neck.out_channels, config.num_classes, **head_kwargs)
    else:
        patch = getattr(backbone, "patch_size", None)
        head_kwargs.setdefault("size_divisible", 2 * patch if patch else 32)
        head = build_detector(config.head, neck.out_channels, neck.out_strides, config.num_classes,
                              **head_kwargs)
    return model_class(backbone, neck, head, config, spec)


def _model_config(data: Mapping[str, Any]) -> ModelConfig:
    """A ``model:`` mapping validated into a :class:`ModelConfig` (``neck`` may be a kind name)."""
    data = dict(data)
    if isinstance(data.get("neck"), str):
        data["neck"] = {"kind": data["neck"]}
    return validate(ModelConfig, data, "model")


def _names(items: Sequence[Any]) -> list[str]:
    return [str(getattr(x, "name", x)) for x in items]


def _agreeing_spec(config: ModelConfig, spec: InputSpec) -> InputSpec:
    """``spec``, after checking that what ``config`` states about the input agrees with it."""
    if config.bands is not None:
        stated = resolve_bands_stated(config.bands, spec.sensor, "model.bands")
        if _names(stated) != spec.band_names:
            raise ConfigError(f"model.bands {_names(stated)} and input_spec.bands {spec.band_names} "
                              "disagree; state the bands once (the input spec is what the model eats).")
    if config.wavelengths is not None and list(config.wavelengths) != [b.wavelength_um for b in spec.bands]:
        raise ConfigError(f"model.wavelengths {list(config.wavelengths)} and the input spec's "
                          f"{[b.wavelength_um for b in spec.bands]} disagree; state them once.")
    if config.classes is not None and _names(config.classes) != spec.class_names:
        raise ConfigError(f"model.classes {_names(config.classes)} and input_spec.classes "
                          f"{spec.class_names} disagree; state the classes once.")
    return spec


def _task_of(task: Any, head: str | None) -> Any:
    """The task given as ``task=``, else the one task whose heads include ``head``."""
    if task is not None:
        return task
    owners = [name for name, heads in TASKS.items() if head in heads]
    return owners[0] if len(owners) == 1 else None


def create_model(
    config_or_task: ModelConfig | Recipe | Mapping[str, Any] | str | None = None,
    backbone: str | None = None,
    *,
    input_spec: InputSpec | None = None,
    head: str | None = None,
    num_classes: int | None = None,
    bands: Sequence[str | Mapping[str, Any]] | None = None,
    neck: str | NeckConfig | Mapping[str, Any] = "auto",
    pretrained: bool = False,
    window_size: int | None = None,
    window_mode: str = "cls",
    global_blocks: Sequence[int] | None = None,
    freeze_backbone: bool = False,
    weights: str | None = None,
    wavelengths: Sequence[float] | None = None,
    num_frames: int = 1,
    temporal_reduction: str = "concat",
    out_indices: Sequence[int] | None = None,
    output_stride: int | None = None,
    backbone_kwargs: Mapping[str, Any] | None = None,
    classes: Sequence[str | Mapping[str, Any]] | None = None,
    model_class: type[RsfmModel] = RsfmModel,
    **head_kwargs: Any,
) -> RsfmModel:
    """Build a segmentation, detection or classification model.

    Call it with a :class:`~rsfm.config.ModelConfig`, a dict with the same keys (a recipe's
    ``model:`` section), a :class:`~rsfm.schema.Recipe`, or
    ``create_model(task, backbone, head=..., num_classes=..., ...)``.

    Args:
        config_or_task: A ``ModelConfig``, a dict, a ``Recipe``, or the task name
            (``segmentation``, ``detection``, ``classification``; also ``task=``). Without it,
            the task is the head's (``head="unet"`` is segmentation).
        backbone: Backbone name (``rsfm.list_backbones()``) in the keyword form.
        input_spec: What the model eats (e.g. ``model.input_spec``, or ``SavedConfig.input``);
            default: resolved from the config's bands/wavelengths/classes and the backbone's card
            (``rsfm.spec.resolve_input_spec``). Not with a ``Recipe`` (its data section is used).
        head: Head for the task (``rsfm.config.TASKS``).
        num_classes: Classes (detection: without background).
        bands: Input bands: names, or ``{name, wavelength, description}`` for layers the catalog
            lacks (a DEM); default: the backbone card's.
        neck: ``auto`` (ViT: simple feature pyramid; ResNet: stages, FPN for detection;
            classification: none), a kind name, a ``NeckConfig`` or a dict of its fields.
        pretrained: Load the backbone's official weights.
        window_size: ViT window attention in tokens (14 for 16-px patches is the ViTDet choice);
            None or 0 = global attention.
        window_mode: ``cls`` (windows also see the cls token; default) or ``vitdet``.
        global_blocks: ViT blocks that keep global attention (default: last of each quarter).
        freeze_backbone: Start with the backbone frozen.
        weights: Local path or ``hf://`` URL of backbone weights.
        wavelengths: Wavelengths (micrometres), one per band (DOFA).
        num_frames: Prithvi frames per sample (input ``(B, C, T, H, W)``).
        temporal_reduction: ``mean`` or ``concat`` (+ 1x1 projection) of the frames' features.
        out_indices: Backbone blocks/stages to tap.
        output_stride: ResNet dilation (8, 16, 32; DeepLab heads default to 16).
        backbone_kwargs: Architecture overrides for ``create_backbone`` (tiny test models).
        classes: Class names (or ``{name, color}``).
        model_class: The class built (see :func:`build_model`); ``rsfm.create_model`` builds
            ``rsfm.Model``, which adds ``save_pretrained`` / ``push_to_hub``.
        **head_kwargs: Head options, e.g. ``aux_head``, ``aspp_rates``, ``decoder_channels``,
            ``anchor_sizes``, ``aspect_ratios``, ``min_size``, ``box_score_thresh``.

    Returns:
        An :class:`~rsfm.models.model.RsfmModel` with ``backbone``, ``neck``, ``head``,
        ``config`` (the architecture), ``input_spec`` and ``load_report``.

    Raises:
        ConfigError: a bad argument (names it and the allowed values).
        UnknownNameError: an unknown backbone.
    """
    if isinstance(config_or_task, (ModelConfig, Recipe, Mapping)):
        passed = {k: v for k, v in {
            "backbone": backbone, "head": head, "num_classes": num_classes, "bands": bands,
            "window_size": window_size, "global_blocks": global_blocks, "weights": weights,
            "wavelengths": wavelengths, "out_indices": out_indices, "output_stride": output_stride,
            "backbone_kwargs": backbone_kwargs, "classes": classes,
        }.items() if v is not None}
        if neck != "auto":
            passed["neck"] = neck
        if (pretrained or freeze_backbone or num_frames != 1 or temporal_reduction != "concat"
                or window_mode != "cls"):
            passed["pretrained/freeze_backbone/num_frames/temporal_reduction/window_mode"] = True
        passed.update(head_kwargs)
        if passed:
            raise ConfigError(f"create_model(config) takes no other arguments; got {sorted(passed)}. "
                              "Put them in the config (or use dataclasses.replace).")
        if isinstance(config_or_task, Recipe):
            if input_spec is not None:
                raise ConfigError("create_model(recipe) resolves the input spec from the recipe's "
                                  "model and data sections; do not pass input_spec too.")
            recipe = config_or_task
            spec = resolve_input_spec(recipe.model, model_card(recipe.model.backbone), recipe.data)
            return build_model(recipe.model, spec, model_class=model_class)
        config = (config_or_task if isinstance(config_or_task, ModelConfig)
                  else _model_config(config_or_task))
    else:
        if config_or_task is None:
            config_or_task = _task_of(head_kwargs.pop("task", None), head)
        if not isinstance(config_or_task, str) or backbone is None:
            raise ConfigError(
                "create_model needs a ModelConfig, a dict, a Recipe, or (task, backbone, head=..., "
                f"num_classes=...); got task={config_or_task!r}, backbone={backbone!r}. "
                f"Tasks: {sorted(TASKS)}."
            )
        if head is None:
            raise ConfigError(f"create_model: head= is required; heads for {config_or_task!r}: "
                              f"{list(TASKS.get(config_or_task, ()))}.")
        if num_classes is None:
            raise ConfigError("create_model: num_classes= is required.")
        config = _model_config({
            "task": config_or_task, "backbone": backbone, "head": head, "num_classes": num_classes,
            "bands": bands, "wavelengths": wavelengths, "pretrained": pretrained, "weights": weights,
            "num_frames": num_frames, "temporal_reduction": temporal_reduction,
            "window_size": window_size, "window_mode": window_mode, "global_blocks": global_blocks,
            "out_indices": out_indices,
            "output_stride": output_stride, "freeze_backbone": freeze_backbone, "neck": neck,
            "head_kwargs": head_kwargs, "backbone_kwargs": dict(backbone_kwargs or {}),
            "classes": classes,
        })
    card = model_card(config.backbone)
    spec = (resolve_input_spec(config, card) if input_spec is None
            else _agreeing_spec(config, input_spec))
    return build_model(config, spec, model_class=model_class)
