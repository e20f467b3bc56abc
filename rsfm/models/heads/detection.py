"""Detection heads: torchvision's Faster R-CNN, RetinaNet, FCOS and Mask R-CNN on our pyramid.

The torchvision detector object is the ``head``; its ``backbone`` attribute is a
:class:`FeatureSource` (a plain object, not a module, so no parameter is registered twice) that
calls the owning model's ``backbone`` and ``neck`` on the padded batch.

Conventions:

* Labels are ``1..num_classes``; 0 is background (the detector gets ``num_classes + 1`` logits,
  also for RetinaNet/FCOS where class 0 is simply never a target).
* :class:`NoResizeTransform` replaces torchvision's ``GeneralizedRCNNTransform``: no ImageNet
  normalisation (our data layer normalises per band), no resizing unless ``min_size`` is given
  (tiles keep their size), any band count; images are zero-padded to a multiple of
  ``size_divisible`` (32; ``2 * patch`` for ViTs), boxes stay in input pixels.
* Default anchors suit 16-256 px objects: one size per level, ``4 * stride`` (16 px at stride 4
  ... 256 px at stride 64), with aspect ratios (0.5, 1, 2); RetinaNet adds 3 scales per octave; FCOS uses
  one "anchor" per location of the level's stride (its regression ranges follow from it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn
from torchvision.models.detection import FCOS, FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign

from rsfm.errors import ConfigError
from rsfm.modelcheck import check_head_kwargs

__all__ = ["DETECTION_HEADS", "FeatureSource", "NoResizeTransform", "build_detector", "default_anchor_sizes"]

DETECTION_HEADS: dict[str, type[nn.Module]] = {
    "faster_rcnn": FasterRCNN,
    "retinanet": RetinaNet,
    "fcos": FCOS,
    "mask_rcnn": MaskRCNN,
}
# Remote-sensing tiles often hold hundreds of objects (trees, cars); torchvision keeps 100.
_DETECTIONS_PER_IMG = 300


class NoResizeTransform(GeneralizedRCNNTransform):
    """``GeneralizedRCNNTransform`` without normalisation and (by default) without resizing.

    Args:
        min_size: None keeps the tile size; an int resizes like torchvision (shorter side).
        max_size: Longer-side cap when resizing (default: no cap).
        size_divisible: Pad the batch to a multiple of this.
    """

    def __init__(self, min_size: int | None = None, max_size: int | None = None, size_divisible: int = 32) -> None:
        super().__init__(min_size or 1, max_size or 10**6, [0.0], [1.0], size_divisible=size_divisible)
        self.resize_enabled = min_size is not None

    def normalize(self, image: Tensor) -> Tensor:
        """Identity (inputs are normalised by the data layer); floats only."""
        if not image.is_floating_point():
            raise TypeError(f"Detection images must be float tensors (normalised by the data layer), got {image.dtype}.")
        return image

    def resize(self, image: Tensor, target: dict[str, Tensor] | None = None) -> tuple[Tensor, dict[str, Tensor] | None]:
        """Identity unless ``min_size`` was given."""
        if not self.resize_enabled:
            return image, target
        return super().resize(image, target)

    def __repr__(self) -> str:
        if not self.resize_enabled:
            return f"{type(self).__name__}(no resize, no normalisation, size_divisible={self.size_divisible})"
        return f"{type(self).__name__}(min_size={self.min_size}, max_size={self.max_size}, no normalisation)"


class FeatureSource:
    """The detector's ``backbone``: runs the owning model's backbone + neck on the padded batch.

    A plain object (not an ``nn.Module``) so the backbone and neck parameters are registered once,
    under ``model.backbone`` and ``model.neck``. ``owner`` is set by :class:`~rsfm.models.model.RsfmModel`;
    ``kwargs`` (wavelengths, coordinates) are set for the duration of one forward call.
    """

    def __init__(self, out_channels: int, num_levels: int) -> None:
        self.out_channels = out_channels
        self.names = [str(i) for i in range(num_levels)]
        self.owner: nn.Module | None = None
        self.kwargs: dict[str, Any] = {}

    def __call__(self, images: Tensor) -> OrderedDict[str, Tensor]:
        """Padded ``(B, C, H, W)`` -> ``{"0": stride-4 level, ...}``."""
        if self.owner is None:
            raise RuntimeError("This detection head is not attached to an RsfmModel (use rsfm.create_model).")
        levels = self.owner.neck(self.owner.backbone(images, **self.kwargs))
        return OrderedDict(zip(self.names, levels, strict=True))


def default_anchor_sizes(kind: str, strides: Sequence[int]) -> tuple[tuple[float, ...], ...]:
    """Anchor sizes per level for 16-256 px objects (levels at ``strides``, finest first)."""
    base = [4 * s for s in strides]  # 16 px at stride 4 ... 256 px at stride 64
    if kind == "retinanet":  # 3 scales per octave, as RetinaNet does
        return tuple(tuple(round(s * 2 ** (k / 3), 1) for k in range(3)) for s in base)
    if kind == "fcos":  # FCOS: the level's stride; regression ranges are [4, 8] x stride
        return tuple((float(s),) for s in strides)
    return tuple((float(s),) for s in base)


def build_detector(
    kind: str,
    in_channels: Sequence[int],
    in_strides: Sequence[int],
    num_classes: int,
    *,
    anchor_sizes: Sequence[Sequence[float]] | None = None,
    aspect_ratios: Sequence[float] | Sequence[Sequence[float]] | None = None,
    min_size: int | None = None,
    max_size: int | None = None,
    size_divisible: int = 32,
    **detector_kwargs: Any,
) -> nn.Module:
    """Build a torchvision detector over pyramid levels ``in_channels`` / ``in_strides``.

    Args:
        kind: ``faster_rcnn``, ``retinanet``, ``fcos`` or ``mask_rcnn``.
        in_channels: Channels of each level (must all be equal).
        in_strides: Stride of each level (the last one may be the extra stride-64 level).
        num_classes: Object classes without background.
        anchor_sizes: One tuple of sizes (pixels) per level; same count on every level.
        aspect_ratios: One tuple for all levels, or one per level (default (0.5, 1, 2); FCOS (1,)).
        min_size: Resize the shorter side to this (default None: keep the tile size).
        max_size: Longer-side cap when resizing.
        size_divisible: Batch padding multiple.
        **detector_kwargs: Other arguments of the torchvision class (e.g. ``box_score_thresh``,
            ``rpn_post_nms_top_n_test``, ``score_thresh``, ``detections_per_img``).

    Returns:
        The detector, whose ``backbone`` is a :class:`FeatureSource` waiting for its owner.
    """
    cls = DETECTION_HEADS[kind]
    check_head_kwargs(kind, detector_kwargs)
    if len(set(in_channels)) != 1:
        raise ConfigError(
            f"Detection needs pyramid levels of equal width, got {list(in_channels)}; use neck='auto' "
            "(simple feature pyramid for ViTs, FPN for ResNets)."
        )
    n = len(in_strides)
    sizes = tuple(tuple(float(s) for s in lv) for lv in anchor_sizes) if anchor_sizes is not None \
        else default_anchor_sizes(kind, in_strides)
    if len(sizes) != n or len({len(s) for s in sizes}) != 1:
        raise ConfigError(
            f"anchor_sizes must give one tuple per pyramid level ({n} levels at strides {list(in_strides)}), "
            f"each with the same number of sizes; got {[list(s) for s in sizes]}."
        )
    if aspect_ratios is None:
        aspect_ratios = (1.0,) if kind == "fcos" else (0.5, 1.0, 2.0)
    ratios_list = list(aspect_ratios)
    if ratios_list and isinstance(ratios_list[0], (int, float)):
        ratios = (tuple(float(r) for r in ratios_list),) * n  # type: ignore[arg-type]
    else:
        ratios = tuple(tuple(float(r) for r in lv) for lv in ratios_list)  # type: ignore[union-attr]
    if len(ratios) != n or len({len(r) for r in ratios}) != 1:
        raise ConfigError(f"aspect_ratios must be one tuple for all levels or one per level ({n}); got {aspect_ratios}.")
    anchors = AnchorGenerator(sizes, ratios)
    source = FeatureSource(in_channels[0], n)
    # RoIAlign reads the levels below stride 64 (torchvision: '0'..'3', never 'pool').
    roi_names = [name for name, s in zip(source.names, in_strides, strict=True) if s < 64] or source.names
    kwargs: dict[str, Any] = dict(detector_kwargs)
    if kind in ("faster_rcnn", "mask_rcnn"):
        kwargs.setdefault("box_detections_per_img", _DETECTIONS_PER_IMG)
        kwargs["rpn_anchor_generator"] = anchors
        kwargs["box_roi_pool"] = MultiScaleRoIAlign(roi_names, output_size=7, sampling_ratio=2)
        if kind == "mask_rcnn":
            kwargs["mask_roi_pool"] = MultiScaleRoIAlign(roi_names, output_size=14, sampling_ratio=2)
    else:
        kwargs.setdefault("detections_per_img", _DETECTIONS_PER_IMG)
        kwargs["anchor_generator"] = anchors
    try:
        model = cls(source, num_classes + 1, **kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"head={kind!r}: torchvision {cls.__name__} rejected the options: {err}") from err
    # Replace torchvision's transform: no ImageNet normalisation, no resize by default.
    model.transform = NoResizeTransform(min_size, max_size, size_divisible)
    return model
