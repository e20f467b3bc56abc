"""bf16 autocast training on CPU: every family runs forward + backward, including Prithvi's 3-D patch
embedding on tiles large enough to reach the kernels that stalled before (>= 576 px).

TerraTorch's Prithvi stalled in bf16 training at >= 576 px on this kind of CPU (oneDNN's Conv3d
weight gradient). rsfm runs a tubelet-1 patch embedding as a Conv2d over the frames (the same
numbers); these tests show one forward + backward completing, with gradients close to fp32's.
The 1024 px step time, with a timeout, is in ``bench/bench_train_step.py`` (no timing here).
"""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from test_train import tiny_recipe

import rsfm

VIT_B = {"depth": 1, "embed_dim": 768, "num_heads": 12}  # the real patch embedding, one block


def _loss(out: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
    """A fixed random projection of the last map (not its square: a final LayerNorm fixes that)."""
    out = (out[-1] if isinstance(out, list) else out).float()
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
    return (out * weight).mean()


def _backward(model: torch.nn.Module, x: torch.Tensor, bf16: bool) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model(x)
    assert (out[-1] if isinstance(out, list) else out).dtype == (torch.bfloat16 if bf16 else torch.float32)
    _loss(out).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _bf16_backward(model: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    return _backward(model, x, bf16=True)


def _fp32_backward(model: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    return _backward(model, x, bf16=False)


def _close(bf16: torch.Tensor, fp32: torch.Tensor) -> float:
    return float((bf16 - fp32).norm() / fp32.norm())


@pytest.mark.parametrize(("frames", "tubelet"), [(1, 1), (2, 1), (2, 2)], ids=["image", "2-frames", "tubelet-2"])
def test_prithvi_patch_embedding_bf16_backward_at_576px(frames, tubelet):
    torch.manual_seed(0)
    model = rsfm.create_backbone("prithvi_eo_v1_100m", num_frames=frames, tubelet_size=tubelet, **VIT_B).train()
    x = torch.randn(1, 6, frames, 576, 576) if frames > 1 else torch.randn(1, 6, 576, 576)
    grads = _bf16_backward(model, x)
    weight = "patch_embed.proj.weight"
    assert torch.isfinite(grads[weight]).all() and grads[weight].abs().sum() > 0
    if frames == 1:  # the numbers, once: bf16 gradients close to fp32's
        ref = _fp32_backward(model, x)
        assert _close(grads[weight], ref[weight]) < 0.05
        assert _close(grads["blocks.0.attn.qkv.weight"], ref["blocks.0.attn.qkv.weight"]) < 0.05


def test_prithvi_tubelet1_conv2d_equals_the_official_conv3d():
    torch.manual_seed(0)
    embed = rsfm.create_backbone("prithvi_eo_v1_100m", num_frames=3, **VIT_B).patch_embed
    x = torch.randn(2, 6, 3, 64, 48)
    tokens, grid = embed(x)
    ref = F.conv3d(x, embed.proj.weight, embed.proj.bias, stride=embed.proj.stride)  # (B, D, T, h, w)
    assert grid == (3, 4, 3)
    torch.testing.assert_close(tokens, ref.flatten(2).transpose(1, 2), atol=1e-5, rtol=1e-5)


def test_dofa_bf16_backward():
    """DOFA's patch embedding is a Conv2d with a generated kernel (no Conv3d): a small tile suffices."""
    torch.manual_seed(0)
    model = rsfm.create_backbone("dofa_base", bands=["B04", "B03", "B02", "B08"], **VIT_B).train()
    x = torch.randn(1, 4, 256, 256)
    grads = _bf16_backward(model, x)
    ref = _fp32_backward(model, x)
    # the generated patch embedding: gradients reach the wavelength-conditioned generator
    name = "patch_embed.weight_generator.fc_weight.weight"
    assert torch.isfinite(grads[name]).all()
    assert _close(grads[name], ref[name]) < 0.05


def test_resnet_bf16_backward():
    torch.manual_seed(0)
    model = rsfm.create_backbone("resnet18", bands=["B04", "B03", "B02"]).train()
    grads = _bf16_backward(model, torch.randn(2, 3, 128, 128))
    assert torch.isfinite(grads["conv1.weight"]).all()


def test_recipe_with_mixed_precision_bf16_trains_on_cpu(tmp_path, caplog):
    recipe = tiny_recipe(tmp_path / "run", name="bf16",
                         model={"backbone": "prithvi_eo_v1_100m", "window_size": 2},
                         train={"epochs": 1, "mixed_precision": "bf16"},
                         output={"dir": str(tmp_path / "run"), "plots": False})
    # fp32 first, then bf16, in one process (a notebook): accelerate's process-wide state used to
    # refuse the second Accelerator ("AcceleratorState has already been initialized")
    fp32 = {**recipe, "train": {**recipe["train"], "mixed_precision": None, "max_steps": 1},
            "output": {"dir": str(tmp_path / "fp32"), "plots": False}}
    assert rsfm.train(fp32).global_step == 1
    with caplog.at_level(logging.INFO, logger="rsfm.train"):
        result = rsfm.train(recipe)
    assert result.global_step > 0
    assert "mixed precision bf16" in caplog.text
