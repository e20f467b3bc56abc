"""Segmentation heads over a feature pyramid: ``deeplabv3``, ``deeplabv3plus``, ``unet``, ``fcn``.

Every head takes the neck's levels (finest first, with known ``in_channels`` and ``in_strides``)
and the input size, and returns logits ``(B, K, H, W)`` at the input size. An optional auxiliary
FCN head (``aux_head=True``) predicts from a shallower level for deep supervision; it is only
computed when asked for (:meth:`SegmentationHead.forward_aux`).

Which level a head reads ("the deep level"): the last level whose stride is <= 16 (the stride-16
map of the ViT pyramid; ``layer4`` of a ResNet dilated to output stride 16 or 8; ``layer3`` of an
undilated ResNet). ASPP rates are given for output stride 16 and scaled by ``16 / stride``
(doubled at 8). The auxiliary head reads the level just before the deep level by default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.segmentation.deeplabv3 import ASPP, ASPPPooling, DeepLabHead
from torchvision.models.segmentation.fcn import FCNHead

from rsfm.errors import ConfigError
from rsfm.modelcheck import check_head_kwargs

__all__ = [
    "SEGMENTATION_HEADS",
    "DeepLabV3Head",
    "DeepLabV3PlusHead",
    "FCNSegHead",
    "SegmentationHead",
    "SeparableASPP",
    "UNetHead",
    "build_segmentation_head",
]


def deep_level(strides: Sequence[int], max_stride: int = 16) -> int:
    """Index of the last level with stride <= ``max_stride`` (0 if every level is coarser)."""
    idx = [i for i, s in enumerate(strides) if s <= max_stride]
    return idx[-1] if idx else 0


def low_level_index(strides: Sequence[int], min_stride: int = 4) -> int:
    """Index of the finest level with stride >= ``min_stride`` (DeepLabv3+'s stride-4 map; a
    stride-2 stem level is skipped), or of the finest level if every level is finer."""
    idx = [i for i, s in enumerate(strides) if s >= min_stride]
    pool = idx or range(len(strides))
    return min(pool, key=lambda i: strides[i])


def _fix_aspp_pooling_norm(aspp: ASPP | SeparableASPP) -> None:
    # torchvision's image-pooling branch applies BatchNorm to a (B, C, 1, 1) tensor, which fails
    # in training with batch size 1 (common with large tiles). GroupNorm(1, C) normalises over
    # channels per sample instead and works for any batch size.
    pooling = aspp.convs[-1]
    for i, m in enumerate(pooling):
        if isinstance(m, nn.BatchNorm2d):
            pooling[i] = nn.GroupNorm(1, m.num_features)


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class SegmentationHead(nn.Module):
    """Base class: ``forward(features, image_size) -> (B, K, H, W)`` plus an optional aux head.

    Args:
        in_channels: Channels of each pyramid level.
        in_strides: Stride of each level.
        num_classes: ``K``.
        aux_head: Add an auxiliary FCN head (``self.aux``).
        aux_index: Level the auxiliary head reads (default: the level before the deep level).
    """

    def __init__(self, in_channels: Sequence[int], in_strides: Sequence[int], num_classes: int, *,
                 aux_head: bool = False, aux_index: int | None = None) -> None:
        super().__init__()
        self.in_channels = list(in_channels)
        self.in_strides = list(in_strides)
        self.num_classes = num_classes
        self.aux: nn.Module | None = None
        self.aux_index: int | None = None
        if aux_head:
            n = len(self.in_channels)
            idx = max(deep_level(self.in_strides) - 1, 0) if aux_index is None else aux_index
            if not -n <= idx < n:
                raise ConfigError(f"aux_index={aux_index} must name a pyramid level in 0..{n - 1}.")
            self.aux_index = idx % n
            self.aux = FCNHead(self.in_channels[self.aux_index], num_classes)

    # the levels ``forward`` reads; None: all of them (set by heads that read only some)
    main_levels: tuple[int, ...] | None = None

    def levels(self, with_aux: bool = False) -> frozenset[int] | None:
        """The pyramid levels ``forward`` (and with ``with_aux`` ``forward_aux``) reads, so the
        neck can skip the others; None when it reads all of them."""
        if self.main_levels is None:
            return None
        aux = {self.aux_index} if with_aux and self.aux_index is not None else set()
        return frozenset(self.main_levels) | aux

    def forward_aux(self, features: Sequence[Tensor], image_size: tuple[int, int]) -> Tensor | None:
        """Auxiliary logits ``(B, K, H, W)``, or None without an aux head."""
        if self.aux is None or self.aux_index is None:
            return None
        out = self.aux(features[self.aux_index])
        return F.interpolate(out, size=image_size, mode="bilinear", align_corners=False)


class DeepLabV3Head(SegmentationHead):
    """torchvision's ``DeepLabHead`` (ASPP with image pooling, 3x3 conv, 1x1 classifier) on the deep level.

    Args:
        aspp_rates: Atrous rates at output stride 16 (scaled by ``16 / stride`` of the level).
        aspp_channels: ASPP width (torchvision: 256). Other widths use the same layer layout.
    """

    def __init__(self, in_channels: Sequence[int], in_strides: Sequence[int], num_classes: int, *,
                 aspp_rates: Sequence[int] = (6, 12, 18), aspp_channels: int = 256, aux_head: bool = False,
                 aux_index: int | None = None) -> None:
        super().__init__(in_channels, in_strides, num_classes, aux_head=aux_head, aux_index=aux_index)
        self.index = deep_level(self.in_strides)
        self.main_levels = (self.index,)
        stride = self.in_strides[self.index]
        self.atrous_rates = tuple(max(1, round(r * 16 / stride)) for r in aspp_rates)
        in_ch = self.in_channels[self.index]
        if aspp_channels == 256:
            self.classifier = DeepLabHead(in_ch, num_classes, self.atrous_rates)
        else:  # DeepLabHead hard-codes 256; same modules and names with another width
            self.classifier = nn.Sequential(
                ASPP(in_ch, self.atrous_rates, aspp_channels),
                nn.Conv2d(aspp_channels, aspp_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(aspp_channels), nn.ReLU(), nn.Conv2d(aspp_channels, num_classes, 1),
            )
        _fix_aspp_pooling_norm(self.classifier[0])

    def forward(self, features: Sequence[Tensor], image_size: tuple[int, int]) -> Tensor:
        """Levels -> logits ``(B, K, H, W)``."""
        out = self.classifier(features[self.index])
        return F.interpolate(out, size=image_size, mode="bilinear", align_corners=False)


class SeparableConv2d(nn.Sequential):
    """Depthwise ``k x k`` conv (optionally dilated) then a pointwise 1x1 conv (Xception, DeepLabv3+)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, in_ch, kernel, padding=dilation * (kernel // 2), dilation=dilation,
                      groups=in_ch, bias=False),
            nn.Conv2d(in_ch, out_ch, 1, bias=False),
        )


def _sep_bn_relu(in_ch: int, out_ch: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(SeparableConv2d(in_ch, out_ch, 3, dilation), nn.BatchNorm2d(out_ch),
                         nn.ReLU(inplace=True))


class SeparableASPP(nn.Module):
    """torchvision's ASPP layout (``convs``: 1x1, three atrous, image pooling; ``project`` with
    dropout 0.5) whose atrous branches are depthwise-separable, as in the DeepLabv3+ paper's
    Xception model and ``segmentation_models_pytorch``."""

    def __init__(self, in_ch: int, atrous_rates: Sequence[int], out_ch: int = 256) -> None:
        super().__init__()
        self.convs = nn.ModuleList([
            _conv_bn_relu(in_ch, out_ch, 1),
            *(_sep_bn_relu(in_ch, out_ch, r) for r in atrous_rates),
            ASPPPooling(in_ch, out_ch),
        ])
        self.project = nn.Sequential(
            nn.Conv2d(len(self.convs) * out_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True), nn.Dropout(0.5),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, h, w)`` -> ``(B, C_out, h, w)``."""
        return self.project(torch.cat([conv(x) for conv in self.convs], dim=1))


class DeepLabV3PlusHead(SegmentationHead):
    """DeepLabv3+: ASPP on the deep level plus the low-level decoder (Chen et al. 2018).

    Decoder: the finest level of stride >= 4 -> 1x1 conv to ``low_level_channels``; the ASPP
    output is upsampled to it, concatenated, refined and classified. Two variants:

    * ``separable=True`` (the paper's and smp/TorchGeo's layout): depthwise-separable atrous
      ASPP branches, a separable 3x3 conv after the ASPP, one separable 3x3 conv after the
      concatenation. With a ResNet-50: 3.2 M head parameters, as smp's.
    * ``separable=False`` (rsfm 0.1): torchvision's full-width ASPP and two full 3x3 convs after
      the concatenation; 16.8 M head parameters with a ResNet-50, and the whole model costs
      1.9x the FLOPs of the separable one at 256 px.

    Args:
        aspp_rates: Atrous rates at output stride 16 (scaled by ``16 / stride``).
        aspp_channels: ASPP and decoder width.
        low_level_channels: Width of the projected low-level features (48 in the paper).
        separable: The variant; default (None): separable when the ASPP reads 1024 channels or
            more (ResNet-50/101's last stage), where the full-width ASPP dominates the cost;
            full otherwise (the ViT pyramids' 256 channels).
    """

    def __init__(self, in_channels: Sequence[int], in_strides: Sequence[int], num_classes: int, *,
                 aspp_rates: Sequence[int] = (6, 12, 18), aspp_channels: int = 256,
                 low_level_channels: int = 48, separable: bool | None = None, aux_head: bool = False,
                 aux_index: int | None = None) -> None:
        super().__init__(in_channels, in_strides, num_classes, aux_head=aux_head, aux_index=aux_index)
        self.index = deep_level(self.in_strides)
        self.low_index = low_level_index(self.in_strides)
        self.main_levels = (self.index, self.low_index)
        if self.low_index == self.index:
            raise ConfigError(
                f"head='deeplabv3plus' needs a low-level map finer than the ASPP map; the neck gives strides "
                f"{self.in_strides}. Use neck='auto' (ViT: simple feature pyramid; ResNet: stages)."
            )
        stride = self.in_strides[self.index]
        self.atrous_rates = tuple(max(1, round(r * 16 / stride)) for r in aspp_rates)
        deep_ch = self.in_channels[self.index]
        self.separable = deep_ch >= 1024 if separable is None else bool(separable)
        mixed = aspp_channels + low_level_channels
        if self.separable:
            self.aspp: nn.Module = SeparableASPP(deep_ch, self.atrous_rates, aspp_channels)
            self.aspp_conv: nn.Module = _sep_bn_relu(aspp_channels, aspp_channels)
            self.decoder = nn.Sequential(_sep_bn_relu(mixed, aspp_channels))
        else:
            self.aspp = ASPP(deep_ch, self.atrous_rates, aspp_channels)
            self.aspp_conv = nn.Identity()
            self.decoder = nn.Sequential(_conv_bn_relu(mixed, aspp_channels),
                                         _conv_bn_relu(aspp_channels, aspp_channels))
        _fix_aspp_pooling_norm(self.aspp)
        self.low_level = _conv_bn_relu(self.in_channels[self.low_index], low_level_channels, 1)
        self.classifier = nn.Conv2d(aspp_channels, num_classes, 1)

    def forward(self, features: Sequence[Tensor], image_size: tuple[int, int]) -> Tensor:
        """Levels -> logits ``(B, K, H, W)``."""
        low = self.low_level(features[self.low_index])
        x = self.aspp_conv(self.aspp(features[self.index]))
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        x = self.classifier(self.decoder(torch.cat([x, low], dim=1)))
        return F.interpolate(x, size=image_size, mode="bilinear", align_corners=False)


def _init_decoder(body: nn.Module, classifier: nn.Module) -> None:
    """smp's decoder init: Kaiming-uniform (fan-in, ReLU) convolutions, unit/zero norms, a
    Xavier-uniform classifier; all biases zero."""
    for m in body.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in classifier.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class _UNetBlock(nn.Module):
    """Upsample to the skip's (or the given) size, concatenate the skip, two conv-BN-ReLU."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn_relu(in_ch + skip_ch, out_ch)
        self.conv2 = _conv_bn_relu(out_ch, out_ch)

    def forward(self, x: Tensor, size: tuple[int, int], skip: Tensor | None = None) -> Tensor:
        x = F.interpolate(x, size=size, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class UNetHead(SegmentationHead):
    """UNet decoder with skip connections over the pyramid (the classic ResNet-UNet).

    Starting at the coarsest level, each block upsamples (nearest, to the skip's size, so dilated
    stages and odd sizes work), concatenates the next finer level and applies two 3x3
    conv-BN-ReLU. Below the finest level blocks without skips upsample x2 until the input size
    (the last one lands exactly on it), then a 3x3 conv gives the logits. A ResNet with its stem
    level (strides 2..32) gives 4 skip blocks and one upsampling block of (256, 128, 64, 32, 16)
    channels: ``segmentation_models_pytorch``'s ``Unet`` layer for layer; the 4 stages alone
    (strides 4..32) give 3 skip blocks and 2 upsampling blocks.

    Weights start as smp's do (Kaiming-uniform convolutions for ReLU, Xavier-uniform classifier,
    zero biases) rather than PyTorch's default ``a=sqrt(5)`` init, whose convolutions are 2.4x
    smaller: behind BatchNorm that multiplies every update's relative size, which from random
    init at the learning rates used for decoders (1e-3..3e-3) costs accuracy per step.

    Args:
        decoder_channels: One width per block (default: 256 halving, at least 16).
    """

    def __init__(self, in_channels: Sequence[int], in_strides: Sequence[int], num_classes: int, *,
                 decoder_channels: Sequence[int] | None = None, aux_head: bool = False,
                 aux_index: int | None = None) -> None:
        super().__init__(in_channels, in_strides, num_classes, aux_head=aux_head, aux_index=aux_index)
        n_skip = len(self.in_channels) - 1
        self.n_extra = max(0, math.ceil(math.log2(max(self.in_strides[0], 1))))
        n_blocks = n_skip + self.n_extra
        if n_blocks == 0:
            raise ConfigError("head='unet' needs a multi-level neck; use neck='auto'.")
        if decoder_channels is None:
            decoder_channels = [max(16, 256 >> i) for i in range(n_blocks)]
        if len(decoder_channels) != n_blocks:
            raise ConfigError(
                f"decoder_channels has {len(decoder_channels)} entries but this pyramid (strides "
                f"{self.in_strides}) needs {n_blocks}: {n_skip} skip blocks + {self.n_extra} upsampling blocks."
            )
        self.decoder_channels = list(decoder_channels)
        blocks, ch = [], self.in_channels[-1]
        for i, out_ch in enumerate(self.decoder_channels):
            skip_ch = self.in_channels[n_skip - 1 - i] if i < n_skip else 0
            blocks.append(_UNetBlock(ch, skip_ch, out_ch))
            ch = out_ch
        self.blocks = nn.ModuleList(blocks)
        self.classifier = nn.Conv2d(ch, num_classes, 3, padding=1)
        _init_decoder(self.blocks, self.classifier)

    def forward(self, features: Sequence[Tensor], image_size: tuple[int, int]) -> Tensor:
        """Levels -> logits ``(B, K, H, W)``."""
        n_skip = len(features) - 1
        x = features[-1]
        for i, block in enumerate(self.blocks):
            if i < n_skip:
                skip = features[n_skip - 1 - i]
                x = block(x, tuple(skip.shape[-2:]), skip)
            elif i == len(self.blocks) - 1:
                x = block(x, image_size)
            else:
                x = block(x, (x.shape[-2] * 2, x.shape[-1] * 2))
        x = self.classifier(x)
        if tuple(x.shape[-2:]) != tuple(image_size):  # only when there are no upsampling blocks
            x = F.interpolate(x, size=image_size, mode="bilinear", align_corners=False)
        return x


class FCNSegHead(SegmentationHead):
    """Light baseline: torchvision's ``FCNHead`` (3x3 conv-BN-ReLU, dropout, 1x1) on the deep level."""

    def __init__(self, in_channels: Sequence[int], in_strides: Sequence[int], num_classes: int, *,
                 aux_head: bool = False, aux_index: int | None = None) -> None:
        super().__init__(in_channels, in_strides, num_classes, aux_head=aux_head, aux_index=aux_index)
        self.index = deep_level(self.in_strides)
        self.main_levels = (self.index,)
        self.classifier = FCNHead(self.in_channels[self.index], num_classes)

    def forward(self, features: Sequence[Tensor], image_size: tuple[int, int]) -> Tensor:
        """Levels -> logits ``(B, K, H, W)``."""
        out = self.classifier(features[self.index])
        return F.interpolate(out, size=image_size, mode="bilinear", align_corners=False)


SEGMENTATION_HEADS: dict[str, type[SegmentationHead]] = {
    "deeplabv3": DeepLabV3Head,
    "deeplabv3plus": DeepLabV3PlusHead,
    "unet": UNetHead,
    "fcn": FCNSegHead,
}


def build_segmentation_head(kind: str, in_channels: Sequence[int], in_strides: Sequence[int],
                            num_classes: int, **kwargs: object) -> SegmentationHead:
    """Build a segmentation head by name; unknown options raise a ConfigError listing the allowed ones."""

    cls = SEGMENTATION_HEADS[kind]
    check_head_kwargs(kind, kwargs)
    return cls(in_channels, in_strides, num_classes, **kwargs)  # type: ignore[arg-type]
