"""ResNet backbones: torchvision's ResNet (same names and numerics as timm's) returning stages."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from rsfm.errors import ConfigError

__all__ = ["ResNetBackbone"]

_LAYERS = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}


def _dilate_pointwise(stage: nn.Module) -> None:
    """Give a dilated stage's 1x1 convolutions its dilation, as ``segmentation_models_pytorch``
    does. A 1x1 kernel has no taps to spread, so outputs and parameters are unchanged, but
    oneDNN then picks a faster CPU kernel: 1.3-1.6x on these convolutions, ResNet-50 DeepLabv3+
    training step at 256 px 1.15x -> 1.0x smp's (``bench/bench_train_step.py``)."""
    rate = max(m.dilation[0] for m in stage.modules() if isinstance(m, nn.Conv2d))
    for m in stage.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1):
            m.dilation = (rate, rate)


class ResNetBackbone(ResNet):
    """A torchvision ResNet without the classifier whose forward returns stage outputs.

    Keys are the torchvision/timm names (``conv1``, ``bn1``, ``layer1``...), so timm and TorchGeo
    checkpoints load strictly. ``output_stride`` 8 or 16 replaces strides with dilation in the last
    stages (for DeepLab).

    ``stem=True`` also returns the stride-2 stem map (``conv1``-``bn1``-``relu``, 64 channels, before
    the max-pool) as the first level: the full-detail skip a UNet decoder joins in its last
    upsampling block, as ``segmentation_models_pytorch``'s ResNet encoders do. It adds no
    parameters, so checkpoints load the same way.

    Attributes:
        out_channels: Channels of the returned levels: the stem (64, with ``stem=True``), then
            stages 1-4 selected by ``out_indices``.
        out_strides: Their strides: 2 for the stem, then 4, 8, 16, 32 without dilation.
    """

    def __init__(
        self,
        depth: int = 50,
        in_chans: int = 3,
        output_stride: int = 32,
        out_indices: Sequence[int] | None = None,
        stem: bool = False,
    ) -> None:
        if depth not in _LAYERS:
            raise ConfigError(f"depth={depth!r}: a ResNet depth is one of {sorted(_LAYERS)}.", key="depth")
        if output_stride not in (8, 16, 32):
            raise ConfigError(f"output_stride={output_stride!r}: must be 8, 16 or 32.", key="output_stride")
        dilate = {32: [False, False, False], 16: [False, False, True], 8: [False, True, True]}[output_stride]
        block, layers = _LAYERS[depth]
        if output_stride != 32 and block is BasicBlock:
            # torchvision's BasicBlock has no dilation support (ResNet-18/34).
            raise ConfigError(
                f"output_stride={output_stride} needs a dilated ResNet; ResNet-{depth} (BasicBlock) only "
                f"supports output_stride=32. Use ResNet-50/101 for DeepLab at stride 8/16."
            )
        super().__init__(block, layers, replace_stride_with_dilation=dilate)
        for stage, dilated in zip((self.layer2, self.layer3, self.layer4), dilate):
            if dilated:
                _dilate_pointwise(stage)
        if in_chans != 3:
            self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        del self.fc, self.avgpool
        self.in_chans = in_chans
        self.output_stride = output_stride
        widths = [64, 128, 256, 512]
        expansion = block.expansion
        strides, s = [], 4
        for i in range(4):
            if i > 0 and not dilate[i - 1]:
                s *= 2
            strides.append(s)
        indices = (0, 1, 2, 3) if out_indices is None else tuple(out_indices)
        if not indices or any(i not in range(4) for i in indices):
            raise ConfigError(f"out_indices={list(indices)}: a ResNet has stages 0..3.", key="out_indices")
        self.out_indices = tuple(sorted(set(indices)))
        self.stem = bool(stem)
        self.out_channels = [64] * self.stem + [widths[i] * expansion for i in self.out_indices]
        self.out_strides = [2] * self.stem + [strides[i] for i in self.out_indices]

    def forward(self, x: Tensor) -> list[Tensor]:  # type: ignore[override]
        """``(B, C, H, W)`` -> levels ``(B, C_i, H/s_i, W/s_i)``: the stem map (``stem=True``),
        then the selected stage outputs."""
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"ResNet was built for (B, {self.in_chans}, H, W) input, got {tuple(x.shape)}")
        x = self.relu(self.bn1(self.conv1(x)))  # (B, 64, H/2, W/2)
        outs = [x] if self.stem else []
        x = self.maxpool(x)
        for i, stage in enumerate((self.layer1, self.layer2, self.layer3, self.layer4)):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
            if i == self.out_indices[-1]:
                break
        return outs
