"""Checks of a model configuration that need no model, no data and no torch.

:func:`check_model_config` is what ``rsfm check`` and the start of training and prediction run
before any compute (through :func:`rsfm.preflight.preflight`); :func:`rsfm.factory.build_model`
makes the same checks before building. Everything here reads the config, the input spec and the
backbone's adapter card (the family facts live in :mod:`rsfm.cards`), so ``rsfm check`` answers
in well under a second: importing torch alone takes longer.

It sits below :mod:`rsfm.models` in the import layers, so the builders share these rules
(:func:`check_overrides` in ``rsfm.registry``, :func:`resolve_neck_kind` in ``rsfm.models.necks``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rsfm.bands import SPECTRAL_INDICES, Band
from rsfm.cards import EXTRA_ARGS, MULTI_FRAME, SHAPE_SAFE, VIT_FAMILIES, AdapterCard, get_card
from rsfm.config import HEAD_OPTIONS, LoraSettings, ModelConfig
from rsfm.errors import ConfigError, UnknownNameError
from rsfm.schema import FreezeConfig
from rsfm.spec import InputSpec

__all__ = [
    "COORDS_ENCODINGS",
    "NECK_KINDS",
    "UnfreezeSpec",
    "backbone_module_names",
    "check_architecture",
    "check_head_kwargs",
    "check_model_config",
    "check_module_names",
    "check_overrides",
    "check_training_tiles",
    "check_weights_source",
    "dofa_wavelengths",
    "lora_target_problem",
    "lora_targets",
    "model_arch",
    "model_card",
    "parse_unfreeze_spec",
    "resolve_neck_kind",
    "unfreeze_spec_problem",
    "unknown_module_message",
    "uses_basic_blocks",
]

NECK_KINDS = ("auto", "simple_feature_pyramid", "stages", "fpn", "none")
# What a Prithvi backbone's ``coords_encoding`` may list (its metadata encoders).
COORDS_ENCODINGS = ("time", "location")


def model_card(name: str) -> AdapterCard:
    """The card of ``model.backbone``.

    Raises:
        UnknownNameError: An unknown name, prefixed with ``model.backbone`` (with close matches).
    """
    try:
        return get_card(name)
    except UnknownNameError as err:
        raise UnknownNameError(f"model.backbone: {err}") from None


def model_arch(config: ModelConfig, card: AdapterCard) -> dict[str, Any]:
    """The backbone architecture the config builds: the card's ``arch`` with ``backbone_kwargs``."""
    return {**card.arch, **config.backbone_kwargs}


def uses_basic_blocks(arch: Mapping[str, Any]) -> bool:
    """True for ResNet-18/34 (torchvision BasicBlocks, which cannot be dilated)."""
    return int(arch.get("depth", 50)) < 50


def check_overrides(card: AdapterCard, overrides: Mapping[str, Any], loading: bool,
                    what: str | None = None) -> None:
    """Reject architecture overrides the family does not know, or that break a pretrained load.

    Args:
        card: The backbone's card.
        overrides: Architecture overrides (``create_backbone(**overrides)``,
            ``model.backbone_kwargs``).
        loading: Whether pretrained weights will be loaded.
        what: How the caller names the overrides in messages (default:
            ``create_backbone('<name>')``).

    Raises:
        ConfigError: Unknown keys (with the allowed ones), or shape-changing keys with weights.
    """
    what = what or f"create_backbone({card.name!r})"
    allowed = set(card.arch) | EXTRA_ARGS[card.family]
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ConfigError(
            f"{what} got unexpected argument(s) {unknown}. Architecture "
            f"overrides allowed for the {card.family} family: {sorted(allowed)}."
        )
    if "coords_encoding" in overrides:
        _check_coords_encoding(overrides["coords_encoding"], what)
    if loading:
        unsafe = sorted(k for k, v in overrides.items() if k not in SHAPE_SAFE and v != card.arch.get(k))
        if unsafe:
            raise ConfigError(
                f"{what}: overrides {unsafe} change the architecture of {card.name!r}, so its "
                f"pretrained weights cannot load. Use pretrained=False for a randomly initialised variant."
            )


def _check_coords_encoding(value: Any, what: str) -> None:
    """``coords_encoding``: a list of ``'time'`` and/or ``'location'`` (Prithvi's encoders)."""
    where = f"{what}: coords_encoding {value!r}"
    if isinstance(value, str) or not isinstance(value, Sequence):
        example = [value] if value in COORDS_ENCODINGS else list(COORDS_ENCODINGS)
        raise ConfigError(f"{where} must be a list of {list(COORDS_ENCODINGS)}, e.g. {example} "
                          "(a string would be read letter by letter).", key="coords_encoding")
    bad = [v for v in value if v not in COORDS_ENCODINGS]
    if bad:
        close = sorted({c for v in bad if isinstance(v, str)
                        for c in difflib.get_close_matches(v, COORDS_ENCODINGS, n=1)})
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(f"{where}: {bad} not one of {list(COORDS_ENCODINGS)}.{hint}",
                          key="coords_encoding")


def check_head_kwargs(head: str, kwargs: Mapping[str, Any], what: str | None = None) -> None:
    """Reject head options that ``head`` does not take (the table is
    :data:`rsfm.config.HEAD_OPTIONS`; the head builders run the same check).

    Args:
        head: The head kind (``unet``, ``faster_rcnn``...).
        kwargs: The head options (``model.head_kwargs``, ``create_model(**head_kwargs)``).
        what: How the caller names the options in messages (default: ``head=<head>``).

    Raises:
        ConfigError: Unknown options, with close matches and the allowed ones.
    """
    allowed = HEAD_OPTIONS[head]
    unknown = sorted(str(k) for k in set(kwargs) - set(allowed))
    if unknown:
        close = sorted({c for k in unknown for c in difflib.get_close_matches(k, allowed, n=2)})
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(f"{what or f'head={head!r}'}: unknown option(s) {unknown} for head "
                          f"{head!r}.{hint} Allowed {head} options: {list(allowed)}.",
                          key="head_kwargs")


def dofa_wavelengths(bands: Sequence[Band]) -> list[float]:
    """The wavelengths (micrometres) DOFA generates its patch embedding from, one per channel.

    Raises:
        ConfigError: A channel without a wavelength (a declared ``DEM``, a spectral index),
            naming it and the fix.
    """
    for band in bands:
        if band.wavelength_um is not None:
            continue
        if band.sensor == "custom" and band.name in SPECTRAL_INDICES:
            raise ConfigError(
                f"DOFA needs a wavelength for every input channel, and the spectral index channel "
                f"{band.name!r} has none; remove it from data.indices (DOFA takes bands only)."
            )
        raise ConfigError(
            f"DOFA needs a wavelength for band {band.name!r}; declare "
            f"{{name: {band.name}, wavelength: <µm>}} or set model.wavelengths."
        )
    return [float(b.wavelength_um) for b in bands if b.wavelength_um is not None]


def resolve_neck_kind(kind: str, vit: bool, task: str) -> str:
    """The neck a ``kind`` means for a ViT (``vit=True``) or a ResNet backbone and a task.

    ``auto`` is the simple feature pyramid for ViTs (``none`` for classification) and the stages
    (``fpn`` for detection) for ResNets.

    Raises:
        ConfigError: An unknown kind, or one that does not fit the backbone (names the fix).
    """
    if kind not in NECK_KINDS:
        raise ConfigError(f"neck.kind {kind!r}; allowed: {list(NECK_KINDS)}.", key="neck.kind")
    if kind == "auto":
        if task == "classification":
            return "none"
        if vit:
            return "simple_feature_pyramid"
        return "fpn" if task == "detection" else "stages"
    if vit and kind in ("stages", "fpn"):
        raise ConfigError(f"neck.kind {kind!r} needs a multi-stage backbone (ResNet); for ViTs use "
                          "'simple_feature_pyramid', 'none' or 'auto'.", key="neck.kind")
    if not vit and kind == "simple_feature_pyramid":
        raise ConfigError("neck.kind 'simple_feature_pyramid' is for ViT backbones; for ResNets use "
                          "'stages', 'fpn', 'none' or 'auto'.", key="neck.kind")
    return kind


def _check_indices(key: str, values: Sequence[int] | None, low: int, high: int, what: str) -> None:
    bad = [i for i in values or () if not low <= i <= high]
    if bad:
        raise ConfigError(f"model.{key} {list(values or ())}: {bad} outside {low}..{high} ({what}).",
                          key=key)


def check_architecture(config: ModelConfig, card: AdapterCard, spec: InputSpec) -> None:
    """The checks :func:`rsfm.factory.build_model` makes before building (all but the data-side ones).

    Raises:
        ConfigError: The first option the backbone cannot have, naming the key and the fix.
    """
    name, family, arch = config.backbone, card.family, model_arch(config, card)
    vit = family in VIT_FAMILIES
    check_overrides(card, config.backbone_kwargs, config.pretrained or config.weights is not None,
                    what="model.backbone_kwargs")
    if config.pretrained and card.weights is None:
        raise ConfigError(f"model.pretrained: {name} has no pretrained checkpoint; set model.weights "
                          "to a file, or pretrained: false.", key="pretrained")
    if config.output_stride is not None and family != "resnet":
        raise ConfigError(f"model.output_stride {config.output_stride} applies to ResNet backbones; "
                          f"{name} is a {family} ViT (its maps have the patch stride). Remove "
                          "model.output_stride.", key="output_stride")
    stride = config.output_stride or config.backbone_kwargs.get("output_stride")
    if family == "resnet" and stride not in (None, 32) and uses_basic_blocks(arch):
        raise ConfigError(f"model.output_stride {stride}: {name} uses BasicBlocks, which cannot be "
                          "dilated; use output_stride 32 (or leave it unset), or a ResNet-50/101 "
                          "backbone for DeepLab at stride 8/16.", key="output_stride")
    if config.backbone_kwargs.get("stem") and config.head != "unet":
        raise ConfigError(f"model.backbone_kwargs.stem returns the stride-2 stem map for a UNet's "
                          f"last skip; head {config.head!r} does not use it. Remove "
                          "backbone_kwargs.stem.", key="backbone_kwargs")
    if vit:
        depth = int(arch["depth"])
        _check_indices("out_indices", config.out_indices, -depth, depth - 1, f"{name} has {depth} blocks")
        _check_indices("global_blocks", config.global_blocks, 0, depth - 1, f"{name} has {depth} blocks")
    else:
        for key, value in (("window_size", config.window_size or None),
                           ("window_mode", None if config.window_mode == "cls" else config.window_mode),
                           ("global_blocks", config.global_blocks)):
            if value is not None:
                raise ConfigError(f"model.{key} {value} applies to ViT backbones (window attention); "
                                  f"{name} is a ResNet. Remove model.{key}.", key=key)
        _check_indices("out_indices", config.out_indices, 0, 3, "ResNet stages")
    if config.num_frames > 1 and family not in MULTI_FRAME:
        raise ConfigError(f"model.num_frames {config.num_frames}: {name} takes single images; time "
                          "series need a Prithvi backbone (rsfm.list_backbones('prithvi*')).",
                          key="num_frames")
    if spec.num_frames != config.num_frames:
        raise ConfigError(f"The input spec has num_frames {spec.num_frames} but model.num_frames is "
                          f"{config.num_frames}; state the frames once.", key="num_frames")
    if config.task == "classification" and config.num_classes < 2:
        raise ConfigError(f"model.num_classes {config.num_classes} (data.classes "
                          f"{spec.class_names}): a classifier needs at least 2 classes to choose "
                          "between; add the other class(es) to data.classes, with one image "
                          "folder each.", key="num_classes")
    if spec.classes and spec.num_classes != config.num_classes:
        raise ConfigError(f"The input spec has {spec.num_classes} classes {spec.class_names} but "
                          f"model.num_classes is {config.num_classes}.", key="num_classes")
    check_head_kwargs(config.head, config.head_kwargs, what="model.head_kwargs")
    if family == "dofa":
        dofa_wavelengths(spec.channels)
    try:
        resolve_neck_kind(config.neck.kind, vit, config.task)
    except ConfigError as err:
        raise ConfigError(f"model.{err} ({name} is a {'ViT' if vit else 'ResNet'}).",
                          key=err.key) from None


def _checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a PyTorch (zip or legacy pickle) or safetensors checkpoint, from
    its first bytes and (zip) its directory; None when it looks like one."""
    import struct
    import zipfile

    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(9)
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path):
                return None
        except (zipfile.BadZipFile, OSError) as err:
            return f"is a damaged or truncated PyTorch (zip) file ({err})"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return None  # torch.save's legacy (pickle) format
    if len(head) == 9 and head[8:9] == b"{":
        (n,) = struct.unpack("<Q", head[:8])
        return None if n <= size - 8 else "is a truncated safetensors file (its header is cut)"
    return (f"is not a PyTorch or safetensors checkpoint ({size:,} bytes starting with "
            f"{head[:8]!r})")


def check_weights_source(config: ModelConfig) -> None:
    """The weights the model will load exist and look like a checkpoint, before any compute.

    ``model.weights``: a local file that exists and starts like a PyTorch or safetensors file,
    or a well-formed ``hf://ORG/REPO/FILE[@REVISION]`` (Hub files are fetched when the model is
    built).

    Raises:
        ConfigError: Names ``model.weights``, the file and the fix.
    """
    weights = config.weights
    if weights is not None:
        text = str(weights)
        if text.startswith("hf://"):
            spec = text[len("hf://"):].partition("@")[0]
            parts = spec.split("/")
            if len(parts) < 3 or not all(parts):
                raise ConfigError(f"model.weights {text!r}: expected "
                                  "hf://ORG/REPO/PATH/IN/REPO[@REVISION].", key="weights")
            return
        path = Path(text).expanduser()
        if path.is_dir():
            raise ConfigError(f"model.weights {text!r} is a folder, not a weights file; give the "
                              "checkpoint file in it (.pt, .pth, .ckpt or .safetensors).",
                              key="weights")
        if not path.is_file():
            raise ConfigError(f"model.weights {text!r} does not exist (a local file, or "
                              "hf://ORG/REPO/FILE[@REVISION]).", key="weights")
        problem = _checkpoint_problem(path)
        if problem:
            raise ConfigError(f"model.weights '{path}' {problem}.", key="weights")


def check_model_config(config: ModelConfig, spec: InputSpec) -> None:
    """Every check of a model that needs neither the model nor data: run it before any compute.

    Checks that the backbone exists; options the backbone cannot have (ResNet-18/34 with
    ``output_stride`` 8/16, ``window_size``/``global_blocks`` on a ResNet, ``output_stride`` on a
    ViT, ``num_frames`` > 1 on a single-image backbone, unknown ``backbone_kwargs``, block or
    stage indices out of range, a neck that does not fit); a DOFA channel without a wavelength;
    the spec agreeing with the config (frames, classes); a local ``model.weights`` file that
    exists; and ``spec.tile_size`` (``data.tile_size``) being a multiple of a ViT's patch size
    (detection pads its batches, so any tile works there; ResNets take any size).

    Args:
        config: The model section (a recipe's ``model:``, or ``model.config``).
        spec: What the model eats (``rsfm.spec.resolve_input_spec``).

    Raises:
        UnknownNameError: An unknown backbone (with close matches).
        ConfigError: The first problem found, naming the key, the value and the fix.
    """
    card = model_card(config.backbone)
    check_architecture(config, card, spec)
    check_weights_source(config)
    tile = spec.tile_size
    if tile is not None and card.family in VIT_FAMILIES and config.task != "detection":
        patch = int(model_arch(config, card)["patch_size"])
        if tile % patch:
            lower, upper = tile // patch * patch, (tile // patch + 1) * patch
            sizes = f"{lower} or {upper}" if lower >= 8 else str(upper)
            raise ConfigError(f"data.tile_size {tile} is not a multiple of the patch size {patch} of "
                              f"{config.backbone}; use {sizes}.", key="tile_size")


def check_training_tiles(config: ModelConfig, card: AdapterCard, tile: int | None,
                         batch_size: int, *, frozen: bool = False,
                         key: str = "data.tile_size") -> None:
    """Training tiles a step can take: BatchNorm in training mode needs more than one value per
    channel, so a batch of one tile whose deepest map is 1x1 fails at the first step
    (``Expected more than 1 value per channel when training``).

    - ResNets: the last stage sees ``ceil(tile / stride)`` pixels (stride 32, or
      ``output_stride``); at ``batch_size`` 1 the tile must exceed the stride, unless the backbone
      stays frozen (eval-mode BatchNorm).
    - ViTs (segmentation): a tile of one patch gives a 1x1 token grid; the feature pyramid's
      coarsest level is then empty (UNet) and the heads' BatchNorm sees one value (batch 1).

    Args:
        config: The model section.
        card: The backbone's card.
        tile: The side of the training tiles (scenes' ``data.tile_size``, or
            ``data.augment.resized_crop.size``); None when the chips' own size decides (checked
            with the data).
        batch_size: ``data.batch_size``.
        frozen: The backbone stays frozen for the whole run.
        key: How the tile size is named in the message.

    Raises:
        ConfigError: Names ``key``, ``data.batch_size`` and the sizes that work.
    """
    if tile is None or config.task == "detection":
        return
    if card.family == "resnet":
        stride = int(config.output_stride or config.backbone_kwargs.get("output_stride") or 32)
        if batch_size == 1 and not frozen and -(-tile // stride) <= 1:
            raise ConfigError(
                f"{key} {tile} with data.batch_size 1: the last stage of {config.backbone} "
                f"(stride {stride}) sees a 1x1 map, and BatchNorm cannot train on one value per "
                f"channel (the first step would fail). Use {key} >= {2 * stride} or "
                "data.batch_size >= 2 (or keep the backbone frozen: model.freeze_backbone).",
                key=key)
    elif card.family in VIT_FAMILIES and config.task == "segmentation":
        patch = int(model_arch(config, card)["patch_size"])
        if tile // patch < 2 and (config.head == "unet" or batch_size == 1):
            why = ("the UNet's coarsest pyramid level would be empty" if config.head == "unet"
                   else "the head's BatchNorm cannot train on one value per channel at "
                        "data.batch_size 1")
            raise ConfigError(
                f"{key} {tile} is a single {patch}-pixel patch of {config.backbone}: its token "
                f"grid is 1x1 and {why}. Use {key} >= {2 * patch}.", key=key)


# ------------------------------------------------------------------ backbone module names
_RESNET_BLOCKS = {18: (False, (2, 2, 2, 2)), 34: (False, (3, 4, 6, 3)), 50: (True, (3, 4, 6, 3)),
                  101: (True, (3, 4, 23, 3)), 152: (True, (3, 8, 36, 3))}
_VIT_BLOCK = ("norm1", "attn", "attn.qkv", "attn.proj", "norm2", "mlp", "mlp.fc1", "mlp.act",
              "mlp.drop1", "mlp.fc2", "mlp.drop2", "drop_path")
_DOFA_PATCH_EMBED = tuple(f"patch_embed{s}" for s in (
    "", ".weight_generator", ".weight_generator.transformer_encoder",
    ".weight_generator.transformer_encoder.layers")) + tuple(
    f"patch_embed.weight_generator.transformer_encoder.layers.0{s}" for s in (
        "", ".self_attn", ".self_attn.out_proj", ".linear1", ".dropout", ".linear2", ".norm1",
        ".norm2", ".dropout1", ".dropout2")) + (
    "patch_embed.weight_generator.fc_weight", "patch_embed.weight_generator.fc_bias",
    "patch_embed.fclayer", "patch_embed.fclayer.w1", "patch_embed.fclayer.w2")


def backbone_module_names(card: AdapterCard, arch: Mapping[str, Any]) -> list[str] | None:
    """The names of the backbone's modules (``named_modules()`` without the root) that
    ``card``'s family builds for ``arch`` (:func:`model_arch`), without building it; None for a
    family whose layout is not known here (nothing can be checked then).

    These are what LoRA targets and unfreeze specs are matched against at ``rsfm check``;
    ``tests/test_modelcheck_names.py`` compares them with the built backbones.
    """
    if card.family in VIT_FAMILIES:
        names = ["blocks"]
        for i in range(int(arch["depth"])):
            names += [f"blocks.{i}"] + [f"blocks.{i}.{n}" for n in _VIT_BLOCK]
        if card.family == "dofa":
            return names + list(_DOFA_PATCH_EMBED)
        coords = arch.get("coords_encoding") or ()
        return (names + ["patch_embed", "patch_embed.proj"]
                + ["temporal_embed_enc"] * ("time" in coords)
                + ["location_embed_enc"] * ("location" in coords) + ["norm"])
    if card.family == "resnet":
        bottleneck, layers = _RESNET_BLOCKS.get(int(arch.get("depth", 50)), (None, ()))
        if bottleneck is None:
            return None
        convs = ("conv1", "bn1", "conv2", "bn2") + (("conv3", "bn3") if bottleneck else ())
        names = ["conv1", "bn1", "relu", "maxpool"]
        for stage, n in enumerate(layers, start=1):
            names.append(f"layer{stage}")
            for i in range(n):
                block = f"layer{stage}.{i}"
                names += [block, *(f"{block}.{c}" for c in (*convs, "relu"))]
                if i == 0 and (bottleneck or stage > 1):
                    names += [f"{block}.downsample", f"{block}.downsample.0",
                              f"{block}.downsample.1"]
        return names
    return None


def lora_target_problem(names: Sequence[str], targets: Sequence[str]) -> str | None:
    """Why LoRA ``targets`` (peft's ``target_modules``: a module name or a suffix after a dot)
    fit no module of ``names`` (a backbone's module names), with close matches; None when one
    of them matches. The rule of :func:`rsfm.lora.apply_lora` and of ``rsfm check``."""
    if any(n == t or n.endswith("." + t) for n in names for t in targets):
        return None
    leaf = sorted({n.split(".", 2)[-1] for n in names if n.count(".") >= 2})
    close = sorted({c for t in targets for c in difflib.get_close_matches(t, leaf, n=3)})
    return (f"lora.target_modules {list(targets)} match no module of the backbone."
            + (f" Close: {close}." if close else ""))


@dataclass(frozen=True)
class UnfreezeSpec:
    """One ``train.freeze.unfreeze[].modules`` entry, parsed (:func:`parse_unfreeze_spec`).

    Attributes:
        kind: ``all`` (the whole model), ``last`` (the backbone's last ``count`` ViT blocks or
            ResNet stages: ``last_blocks:N`` / ``last_stages:N``) or ``modules`` (``paths``).
        paths: Module paths relative to the model (a block range ``blocks.8-11`` is expanded);
            a path that is not the model's is looked up in the backbone.
        count: How many blocks/stages ``last`` takes.
    """

    kind: Literal["all", "last", "modules"]
    paths: tuple[str, ...] = ()
    count: int = 0


def parse_unfreeze_spec(spec: str) -> UnfreezeSpec:
    """Read an unfreeze spec: ``all``, ``last_blocks:N`` / ``last_stages:N``, a block range
    ``blocks.8-11`` (inclusive) or a module path. The grammar of ``rsfm check`` and of
    :func:`rsfm.train.unfreeze.resolve_modules`.

    Raises:
        ConfigError: A count or range that is not one (``last_blocks:x``, ``blocks.8-x``,
            ``blocks.11-8``).
    """
    spec = spec.strip()
    if spec == "all":
        return UnfreezeSpec("all")
    if spec.startswith(("last_blocks:", "last_stages:")):
        n = spec.split(":", 1)[1].strip()
        if not n.isdigit():
            raise ConfigError(f"Unfreeze spec {spec!r}: {n!r} is not a count.")
        return UnfreezeSpec("last", count=int(n))
    prefix, _, last = spec.rpartition(".")
    if "-" not in last:  # module names hold no "-": any "-" is a block range
        return UnfreezeSpec("modules", paths=(spec,))
    lo, _, hi = last.partition("-")
    if not (prefix and lo.isdigit() and hi.isdigit()):
        raise ConfigError(f"Unfreeze spec {spec!r}: {last!r} is not a range of block numbers "
                          "(e.g. blocks.8-11).")
    if int(lo) > int(hi):
        raise ConfigError(f"Unfreeze spec {spec!r}: the range {last!r} is reversed (it would "
                          f"unfreeze nothing); write {prefix}.{hi}-{lo}.")
    blocks = range(int(lo), int(hi) + 1)
    return UnfreezeSpec("modules", paths=tuple(f"{prefix}.{i}" for i in blocks))


def unknown_module_message(path: str, names: Iterable[str]) -> str:
    """The error of an unfreeze spec's module ``path`` that is none of ``names`` (the model's
    module names), with close matches among the shallow ones."""
    shown = [n for n in names if n and n.count(".") <= 2]
    close = difflib.get_close_matches(path, shown, n=3)
    return (f"Unfreeze spec {path!r} names no module of the model."
            + (f" Did you mean {close}?" if close else ""))


def unfreeze_spec_problem(spec: str, backbone: Sequence[str],
                          others: Sequence[str] = ("neck", "head")) -> str | None:
    """Why an unfreeze spec (``train.freeze.unfreeze[].modules``) is malformed or names no
    module, with close matches; None when it does (or when it reaches into ``others``, whose
    layout is not known without building the model). ``backbone``: the backbone's module names
    (:func:`backbone_module_names`). :func:`rsfm.train.unfreeze.resolve_modules` without torch."""
    try:
        parsed = parse_unfreeze_spec(spec)
    except ConfigError as err:
        return str(err)
    model = ["backbone", *(f"backbone.{n}" for n in backbone)]
    for path in parsed.paths:
        if path.split(".", 1)[0] in others or path in model or path in backbone:
            continue
        return unknown_module_message(path, (*others, *model))
    return None


def lora_targets(target_modules: Sequence[str] | None, card: AdapterCard) -> tuple[str, ...]:
    """The LoRA targets a run uses: the recipe's ``lora.target_modules``, else (None or empty)
    the backbone card's ``lora_targets``."""
    return tuple(target_modules) if target_modules else tuple(card.lora_targets)


def check_module_names(config: ModelConfig, lora: LoraSettings | None,
                       freeze: FreezeConfig) -> None:
    """``lora.target_modules`` and ``train.freeze.unfreeze[].modules`` name modules of the
    backbone the config builds (from its card, without building it).

    Raises:
        ConfigError: A LoRA target list that matches no module, or an unfreeze spec that names
            none, with close matches.
    """
    card = model_card(config.backbone)
    names = backbone_module_names(card, model_arch(config, card))
    if names is None:
        return
    if lora is not None:
        problem = lora_target_problem(names, lora_targets(lora.target_modules, card))
        if problem:
            raise ConfigError(problem, key="lora.target_modules")
    for i, step in enumerate(freeze.unfreeze):
        for spec in step.modules:
            problem = unfreeze_spec_problem(spec, names)
            if problem:
                raise ConfigError(f"train.freeze.unfreeze[{i}].modules: {problem}",
                                  key="train.freeze.unfreeze")
