"""Every official checkpoint layout loads strictly from an offline Hub cache, and runs.

For each card, a state dict with exactly the official key names, shapes and dtypes
(``tests/data/checkpoints/*.json``, or timm's own ResNet layout where no manifest exists) is
written under the official file name into a Hub cache layout; ``create_backbone(pretrained=True)``
then goes through the real ``hf_hub_download`` path with ``HF_HUB_OFFLINE=1``. Each tensor is one
distinct constant expanded to its official shape, so a 600M-parameter file takes kilobytes of disk
(full random files took 2.5 GB twice over and filled small CI disks) and every parameter shows
which file key it was loaded from.
"""

from __future__ import annotations

import gc
import json
import warnings
from pathlib import Path

import pytest
import torch
from hub_utils import place_in_hub_cache, remove_repo
from safetensors.torch import save_file

import rsfm
from rsfm.errors import WeightsError
from rsfm.models.weights import ChecksumWarning

MANIFESTS = Path(__file__).parent / "data" / "checkpoints"
MANIFEST_OF = {
    "resnet50": "resnet50_timm.json",
    "resnet50_ssl4eo_s2_moco": "resnet50_ssl4eo_s2_moco.json",
    "prithvi_eo_v1_100m": "prithvi_eo_v1_100m.json",
    "prithvi_eo_v2_300m": "prithvi_eo_v2_300m.json",
    "prithvi_eo_v2_300m_tl": "prithvi_eo_v2_300m_tl.json",
    "prithvi_eo_v2_600m": "prithvi_eo_v2_600m.json",
    "prithvi_eo_v2_600m_tl": "prithvi_eo_v2_600m_tl.json",
    "dofa_base": "dofa_base.json",
    "dofa_large": "dofa_large.json",
    "dofa_base_torchgeo": "dofa_base_torchgeo.json",
    "dofa_large_torchgeo": "dofa_large_torchgeo.json",
}


def official_layout(name: str) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Key -> (shape, dtype) of the official file of card ``name``."""
    if name in MANIFEST_OF:
        raw = json.loads((MANIFESTS / MANIFEST_OF[name]).read_text())
        return {k: (tuple(shape), getattr(torch, dtype)) for k, (shape, dtype) in raw.items()}
    import timm  # timm's own ResNet is the reference layout for the timm/TorchGeo files

    card = rsfm.backbone_card(name)
    model = timm.create_model(f"resnet{card.arch['depth']}", in_chans=len(card.bands), pretrained=False)
    layout = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
    if card.weights.repo_id.startswith("torchgeo/"):  # SSL4EO files have no classifier
        layout = {k: v for k, v in layout.items() if not k.startswith("fc.")}
    return layout


def marked_state(layout: dict) -> dict[str, torch.Tensor]:
    """One distinct constant per key, as a one-element tensor expanded (stride 0) to the official shape."""
    state = {}
    for index, (key, (shape, dtype)) in enumerate(layout.items()):
        if dtype.is_floating_point:
            value = 0.02 * (index + 1) / len(layout)
            if key.endswith(("running_var", "norm1.weight", "norm2.weight", "norm.weight")):
                value += 1.0  # keep norms well-conditioned so outputs stay finite
            state[key] = torch.tensor(value, dtype=dtype).expand(shape)
        else:
            state[key] = torch.zeros((), dtype=dtype).expand(shape)
    return state


def save_official(state: dict, path: Path) -> None:
    """Write ``state`` in the official file's format; ``torch.save`` keeps stride-0 tensors small."""
    if path.suffix == ".safetensors":  # safetensors stores dense tensors only (the ResNet files: small)
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)


def input_for(backbone: torch.nn.Module, name: str, h: int, w: int) -> torch.Tensor:
    return torch.randn(1, len(backbone.bands), h, w)


@pytest.mark.parametrize("name", rsfm.list_backbones())
def test_official_layout_loads_strictly_from_offline_hub_cache(name, hub_cache, tmp_path):
    card = rsfm.backbone_card(name)
    layout = official_layout(name)
    state = marked_state(layout)
    source = tmp_path / card.weights.filename
    save_official(state, source)
    place_in_hub_cache(hub_cache, card.weights.repo_id, card.weights.filename, source, card.weights.revision)
    source.unlink()
    try:
        with warnings.catch_warnings():
            # dofa_base records the real file's sha256; ours is random, so the loader must say so.
            warnings.simplefilter("ignore" if card.weights.sha256 is None else "error", ChecksumWarning)
            if card.weights.sha256:
                with pytest.warns(ChecksumWarning, match="Checksum mismatch"):
                    backbone = rsfm.create_backbone(name, pretrained=True)
            else:
                backbone = rsfm.create_backbone(name, pretrained=True)
        # every model key of the same name got its value from that file key (after the card's prefix)
        own = backbone.state_dict()
        prefix = card.state_dict.strip_prefixes[0] if card.state_dict.strip_prefixes else ""
        matched = [k for k in layout if k.startswith(prefix) and k[len(prefix):] in own]
        assert len(matched) > len(own) // 2, f"only {len(matched)} of {len(own)} model keys found in the file"
        for key in matched:
            mine = own[key[len(prefix):]]
            if mine.shape == state[key].shape:  # band-adapted tensors (first convs) are reshaped on load
                torch.testing.assert_close(mine, state[key].to(mine.dtype), rtol=0, atol=0, msg=lambda m, key=key: f"{key}: {m}")
        backbone.eval()
        patch = getattr(backbone, "patch_size", 16)
        with torch.no_grad():
            square = backbone(input_for(backbone, name, 224, 224))[-1]
            h, w = 224, 224 + 4 * patch if patch != 16 else 320
            wide = backbone(input_for(backbone, name, h, w))[-1]
        stride = backbone.out_strides[-1]
        assert square.shape == (1, backbone.out_channels[-1], 224 // stride, 224 // stride)
        assert wide.shape == (1, backbone.out_channels[-1], h // stride, w // stride)
        assert torch.isfinite(square).all() and torch.isfinite(wide).all()
    finally:
        remove_repo(hub_cache, card.weights.repo_id)
        del state
        gc.collect()


@pytest.fixture
def tiny_prithvi_file(tmp_path):
    """A tiny Prithvi-layout MAE file (encoder./decoder. keys) and its backbone arguments."""
    kwargs = {"depth": 2, "embed_dim": 64, "num_heads": 2}
    model = rsfm.create_backbone("prithvi_eo_v2_300m", **kwargs)
    state = {f"encoder.{k}": v.clone() for k, v in model.state_dict().items()}
    state["encoder.pos_embed"] = torch.zeros(1, 197, 64)
    state["decoder.mask_token"] = torch.zeros(1, 1, 32)
    state["decoder.decoder_embed.weight"] = torch.zeros(32, 64)
    path = tmp_path / "Prithvi_tiny.pt"
    torch.save(state, path)
    return path, state, kwargs


def test_missing_keys_are_listed_with_counts_and_file(tiny_prithvi_file, tmp_path):
    _, state, _ = tiny_prithvi_file
    broken = {k: v for k, v in state.items() if ".blocks.1." not in k}
    bad = tmp_path / "missing.pt"
    torch.save(broken, bad)
    with pytest.raises(WeightsError, match=r"missing.*blocks\.1\..*more") as err:
        rsfm.create_backbone("prithvi_eo_v2_300m", weights=bad)
    assert str(bad) in str(err.value)


def test_wrong_file_reports_unexpected_and_mismatched_keys(tmp_path):
    dofa = rsfm.create_backbone("dofa_base_torchgeo", depth=2, embed_dim=64, num_heads=2)
    path = tmp_path / "dofa.pt"
    torch.save(dofa.state_dict(), path)
    with pytest.raises(WeightsError, match="unexpected") as err:
        rsfm.create_backbone("prithvi_eo_v2_300m", weights=path)
    assert "missing" in str(err.value) and "dofa.pt" in str(err.value)


def test_shape_mismatch_is_reported(tiny_prithvi_file, tmp_path):
    _, state, _ = tiny_prithvi_file
    with pytest.raises(WeightsError, match="shape mismatches"):
        bad = tmp_path / "tiny_vs_full.pt"
        torch.save(state, bad)
        rsfm.create_backbone("prithvi_eo_v2_300m", weights=bad)


def test_truncated_file_names_the_file(tiny_prithvi_file, tmp_path):
    path, _, _ = tiny_prithvi_file
    cut = tmp_path / "truncated.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsError, match=r"truncated\.pt.*truncated"):
        rsfm.create_backbone("prithvi_eo_v2_300m", weights=cut)


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(WeightsError, match="flat state dict"):
        rsfm.create_backbone("resnet18", weights=path)


def test_missing_local_file_and_missing_cache_entry(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        rsfm.create_backbone("resnet18", weights=tmp_path / "nope.pt")
    with pytest.raises(WeightsError, match=r"not in the Hugging Face cache.*HF_HUB_OFFLINE=1"):
        rsfm.create_backbone("resnet18", pretrained=True)


def test_hf_url_and_pretrained_false_never_downloads(hub_cache, tmp_path, monkeypatch):
    from rsfm.models import weights

    calls = []
    monkeypatch.setattr(weights, "fetch", lambda *a, **k: calls.append(a) or Path("/nonexistent"))
    rsfm.create_backbone("resnet18")
    assert calls == []
    model = rsfm.create_backbone("resnet18")
    source = tmp_path / "r18.safetensors"
    save_file({**model.state_dict(), "fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}, str(source))
    monkeypatch.undo()
    place_in_hub_cache(hub_cache, "someone/my-resnet", "weights/r18.safetensors", source, "a" * 40)
    try:
        loaded = rsfm.create_backbone("resnet18", weights=f"hf://someone/my-resnet/weights/r18.safetensors@{'a' * 40}")
        torch.testing.assert_close(loaded.conv1.weight, model.conv1.weight)
    finally:
        remove_repo(hub_cache, "someone/my-resnet")


def test_legacy_flat_prithvi_v1_layout_loads(tmp_path):
    """The 2023 Prithvi-100M file has flat keys (no encoder./decoder. prefixes)."""
    layout = official_layout("prithvi_eo_v1_100m")
    flat = {}
    for key, value in layout.items():
        if key.startswith("encoder."):
            flat[key[len("encoder."):]] = value
        else:  # decoder.decoder_blocks.0... -> decoder_blocks.0..., decoder.mask_token -> mask_token
            flat[key[len("decoder."):]] = value
    state = marked_state(flat)
    path = tmp_path / "Prithvi_100M.pt"
    torch.save(state, path)
    backbone = rsfm.create_backbone("prithvi_eo_v1_100m", weights=path)
    torch.testing.assert_close(backbone.blocks[3].mlp.fc1.weight, state["blocks.3.mlp.fc1.weight"])


def test_hf_home_is_honoured_in_a_fresh_process(tmp_path):
    """HF_HOME is read by huggingface_hub at import: check it end to end in a subprocess."""
    import subprocess
    import sys

    model = rsfm.create_backbone("resnet18")
    source = tmp_path / "model.safetensors"
    save_file({**model.state_dict(), "fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}, str(source))
    home = tmp_path / "hf-home"
    place_in_hub_cache(home / "hub", "timm/resnet18.a1_in1k", "model.safetensors", source, None)
    code = (
        "import rsfm, torch; from safetensors.torch import load_file;"
        f"m = rsfm.create_backbone('resnet18', pretrained=True);"
        f"ref = load_file({str(source)!r});"
        "assert torch.equal(m.conv1.weight, ref['conv1.weight']); print('ok')"
    )
    env = {"HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
