"""rsfm.models.blocks against the timm layers it replaces: same state-dict keys, same numbers.

timm is a dev dependency only for this file (rsfm itself does not import it).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rsfm.errors import ConfigError
from rsfm.models import blocks

timm_layers = pytest.importorskip("timm.layers")


def _same_weights(ours: nn.Module, theirs: nn.Module) -> None:
    """Random weights into ``theirs``, loaded strictly into ``ours`` (so the keys are equal)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn_like(p))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict(), strict=True)


def test_mlp_matches_timm():
    ours = blocks.Mlp(in_features=24, hidden_features=96, act_layer=nn.GELU)
    theirs = timm_layers.Mlp(in_features=24, hidden_features=96, act_layer=nn.GELU)
    _same_weights(ours, theirs)
    x = torch.randn(2, 7, 24)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)
    assert [n for n, _ in ours.named_modules() if n.startswith("fc")] == ["fc1", "fc2"]  # LoRA targets
    other = blocks.Mlp(8, 16, out_features=4)
    assert other(torch.randn(3, 8)).shape == (3, 4)


def test_layernorm2d_matches_timm():
    ours, theirs = blocks.LayerNorm2d(16), timm_layers.LayerNorm2d(16)
    _same_weights(ours, theirs)
    assert ours.eps == theirs.eps == 1e-6
    x = torch.randn(2, 16, 5, 7)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


@pytest.mark.parametrize("pool", ["avg", "max", "avgmax", "catavgmax"])
def test_classifier_head_matches_timm(pool):
    ours = blocks.ClassifierHead(32, 5, pool_type=pool, drop_rate=0.3).eval()
    theirs = timm_layers.ClassifierHead(32, 5, pool_type=pool, drop_rate=0.3).eval()
    _same_weights(ours, theirs)
    x = torch.randn(3, 32, 6, 9)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


def test_classifier_head_rejects_unknown_pool():
    with pytest.raises(ConfigError, match=r"pool 'mean'; allowed: \['avg', 'max'"):
        blocks.ClassifierHead(8, 2, pool_type="mean")


@pytest.mark.parametrize("scale_by_keep", [True, False])
def test_drop_path_matches_timm(scale_by_keep):
    ours = blocks.DropPath(0.4, scale_by_keep=scale_by_keep)
    theirs = timm_layers.DropPath(0.4, scale_by_keep=scale_by_keep)
    assert repr(ours) == repr(theirs).replace(type(theirs).__name__, type(ours).__name__)
    x = torch.randn(64, 3, 5)
    for training in (True, False):
        ours.train(training)
        theirs.train(training)
        torch.manual_seed(1)
        a = ours(x)
        torch.manual_seed(1)
        torch.testing.assert_close(a, theirs(x), rtol=0, atol=0)
    assert blocks.DropPath(0.0).train()(x) is x


def test_models_do_not_import_timm():
    import subprocess
    import sys

    code = ("import sys, rsfm; rsfm.create_model('classification', 'resnet18', head='classification', "
            "num_classes=3); rsfm.create_backbone('dofa_base', depth=1, embed_dim=32, num_heads=2); "
            "print('timm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
