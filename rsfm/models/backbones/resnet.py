"""ResNet backbones: torchvision's ResNet (same names and numerics as timm's) returning stages."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

__all__ = ["ResNetBackbone"]

_LAYERS = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}


class ResNetBackbone(ResNet):
    """A torchvision ResNet without the classifier whose forward returns stage outputs.

    Keys are the torchvision/timm names (``conv1``, ``bn1``, ``layer1``...), so timm and TorchGeo
    checkpoints load strictly. ``output_stride`` 8 or 16 replaces strides with dilation in the last
    stages (for DeepLab).

    Attributes:
        out_channels: Channels of stages 1-4 (selected by ``out_indices``).
        out_strides: Strides of stages 1-4 (4, 8, 16, 32 without dilation).
    """

    def __init__(
        self,
        depth: int = 50,
        in_chans: int = 3,
        output_stride: int = 32,
        out_indices: Sequence[int] | None = None,
    ) -> None:
        if depth not in _LAYERS:
            raise ValueError(f"ResNet depth must be one of {sorted(_LAYERS)}, got {depth}")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        dilate = {32: [False, False, False], 16: [False, False, True], 8: [False, True, True]}[output_stride]
        block, layers = _LAYERS[depth]
        if output_stride != 32 and block is BasicBlock:
            # torchvision's BasicBlock has no dilation support (ResNet-18/34).
            raise ValueError(
                f"output_stride={output_stride} needs a dilated ResNet; ResNet-{depth} (BasicBlock) only "
                f"supports output_stride=32. Use ResNet-50/101 for DeepLab at stride 8/16."
            )
        super().__init__(block, layers, replace_stride_with_dilation=dilate)
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
            raise ValueError(f"out_indices for a ResNet name stages 0..3, got {list(indices)}")
        self.out_indices = tuple(sorted(set(indices)))
        self.out_channels = [widths[i] * expansion for i in self.out_indices]
        self.out_strides = [strides[i] for i in self.out_indices]

    def forward(self, x: Tensor) -> list[Tensor]:  # type: ignore[override]
        """``(B, C, H, W)`` -> stage outputs ``(B, C_i, H/s_i, W/s_i)``."""
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"ResNet was built for (B, {self.in_chans}, H, W) input, got {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for i, stage in enumerate((self.layer1, self.layer2, self.layer3, self.layer4)):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
            if i == self.out_indices[-1]:
                break
        return outs
