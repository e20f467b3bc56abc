"""Port parity against committed golden outputs of the reference implementations.

``tests/reference/make_golden.py`` ran TerraTorch's ``PrithviMAE``, TorchGeo's ``DOFA`` and timm's
/ TorchGeo's ResNets (official key layouts; ViTs at reduced depth and width) on synthetic weights
and inputs, and wrote ``tests/reference/golden/<case>.{json,safetensors}``. Here every case is
rebuilt with rsfm from its card (same reduced size), the same weights are regenerated bit for bit
(checked by SHA-256), written in the official file format and loaded through the card's key map
by the same code real checkpoints use (``load_pretrained``: read, ``remap_keys``, strict load),
and rsfm's feature maps are compared with the stored reference outputs.

Criterion (shared/checkpoints/README.md section 5): max |ours - ref| / max |ref| <= 1e-4, in
float32. Run ``pytest tests/test_parity_golden.py -s`` to see the measured ratios. How to
regenerate the golden files: ``tests/reference/README.md``.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import rsfm
from rsfm.models.weights import load_pretrained

REFERENCE = Path(__file__).parent / "reference"
GOLDEN = REFERENCE / "golden"


def _load_synth():
    spec = importlib.util.spec_from_file_location("golden_weights", REFERENCE / "golden_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gw = _load_synth()


@cache
def meta(case: str) -> dict:
    return json.loads((GOLDEN / f"{case}.json").read_text())


@cache
def expected(case: str) -> dict[str, torch.Tensor]:
    return load_file(str(GOLDEN / f"{case}.safetensors"))


CASES = sorted(p.stem for p in GOLDEN.glob("*.json"))
RUNS = [pytest.param(case, run["name"], id=f"{case}-{run['name']}") for case in CASES for run in meta(case)["runs"]]


@pytest.fixture(autouse=True)
def _full_precision():
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(previous)


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """``(case, rename=None) -> path`` of the regenerated weights, in the official file format.

    Only the latest file is kept on disk (the ResNet files are 45-180 MB); tests are ordered by
    case, so each is written once.
    """
    folder = tmp_path_factory.mktemp("golden-weights")
    current: dict[str, Path] = {}

    def get(case: str, rename: dict[str, str] | None = None) -> Path:
        tag = f"{case}-renamed" if rename else case
        if tag not in current:
            for old in current.values():
                old.unlink(missing_ok=True)
            current.clear()
            w = meta(case)["weights"]
            state = gw.make_state(w)
            assert gw.state_digest(state) == w["sha256"], "regenerated weights differ from the reference's"
            if rename:
                state = {rename[k]: v for k, v in state.items()}
            path = folder / (tag + Path(w["filename"]).suffix)
            if w["format"] == "safetensors":
                save_file(state, str(path))
            else:
                torch.save(state, path)
            current[tag] = path
        return current[tag]

    yield get
    for path in current.values():
        path.unlink(missing_ok=True)


def build(case: str, run: dict, weights: Path) -> torch.nn.Module:
    """rsfm's backbone for a run, with the golden weights loaded through the card's key map."""
    m = meta(case)
    card = rsfm.backbone_card(m["card"])
    kwargs = m["rsfm"]["create_backbone"]
    opts = {k: v for k, v in run["rsfm"].items() if k != "wavelengths"}
    if not kwargs:  # full size (ResNet): the public entry point reads and loads the file
        model = rsfm.create_backbone(card.name, weights=weights, **opts)
        report = model.load_report
    else:  # reduced size: create_backbone refuses weights with shape-changing overrides
        model = rsfm.create_backbone(card.name, pretrained=False, **opts, **kwargs)
        report = load_pretrained(model, card, card.catalog_bands(), weights=weights)
    assert report is not None and report.ok, report
    return model.eval()


def compare(ours: torch.Tensor, ref: torch.Tensor, tol: float, label: str) -> float:
    assert ours.shape == ref.shape, f"{label}: shape {tuple(ours.shape)} != reference {tuple(ref.shape)}"
    scale = float(ref.abs().max())
    rel = float((ours.float() - ref).abs().max()) / scale
    print(f"{label}: max |ours - ref| / max |ref| = {rel:.2e}")  # shown with pytest -s
    torch.testing.assert_close(
        ours.float(), ref, rtol=0.0, atol=tol * scale,
        msg=lambda m: f"{label}: max |ours - ref| / max |ref| = {rel:.2e} > {tol:g}\n{m}",
    )
    return rel


def run_model(model: torch.nn.Module, case: str, run: dict, x: torch.Tensor, **kwargs) -> list[torch.Tensor]:
    tensors = expected(case)
    call = {k: tensors[v] for k, v in run["call"].items()}
    with torch.no_grad():
        return model(x, **call, **kwargs)


def check_outputs(outs: list[torch.Tensor], case: str, run: dict, label: str) -> None:
    tensors = expected(case)
    tol = meta(case)["tolerance"]["max_abs_diff_over_max_abs_ref"]
    assert len(outs) == len(run["outputs"]), f"{label}: {len(outs)} outputs, reference has {len(run['outputs'])}"
    for ours, key in zip(outs, run["outputs"]):
        compare(ours, tensors[key], tol, f"{label}/{key}")


@pytest.mark.parametrize(("case", "run_name"), RUNS)
def test_matches_reference(case, run_name, weight_files):
    m = meta(case)
    run = next(r for r in m["runs"] if r["name"] == run_name)
    card = rsfm.backbone_card(m["card"])
    path = weight_files(case)
    model = build(case, run, path)
    x = gw.make_input(run["input"])
    kwargs = {}
    if m["family"] == "dofa":
        if run["rsfm"]["wavelengths"] == "card":
            assert [b.wavelength_um for b in card.catalog_bands()] == run["wavelengths"], (
                "the card's default wavelengths differ from the ones the reference was given")
        else:
            kwargs["wavelengths"] = run["wavelengths"]
    check_outputs(run_model(model, case, run, x, **kwargs), case, run, f"{case}/{run_name}")
    if m["family"] == "prithvi" and run["rsfm"]["num_frames"] == 1:  # (B, C, H, W) input too
        check_outputs(run_model(model, case, run, x[:, :, 0]), case, run, f"{case}/{run_name}[4-D]")


@pytest.mark.parametrize("case", [c for c in CASES if meta(c)["family"] == "dofa"])
def test_dofa_wavelengths_at_construction(case, weight_files):
    """Wavelengths given to create_backbone give the per-call results."""
    run = next(r for r in meta(case)["runs"] if r["rsfm"]["wavelengths"] == "per_call")
    m = meta(case)
    card = rsfm.backbone_card(m["card"])
    opts = {k: v for k, v in run["rsfm"].items() if k != "wavelengths"}
    model = rsfm.create_backbone(card.name, pretrained=False, wavelengths=run["wavelengths"], **opts,
                                 **m["rsfm"]["create_backbone"])
    # DOFA has no first layer to adapt (first_conv is empty), so the bands argument changes nothing
    report = load_pretrained(model, card, card.catalog_bands(), weights=weight_files(case))
    assert report.ok, report
    check_outputs(run_model(model.eval(), case, run, gw.make_input(run["input"])), case, run,
                  f"{case}/{run['name']}[wavelengths at construction]")


def test_prithvi_v1_legacy_flat_layout(weight_files):
    """The 2023 flat V1 layout (no encoder./decoder. prefixes) loads to the same outputs."""
    case = "prithvi_eo_v1_100m"
    path = weight_files(case, rename=meta(case)["legacy_layout"]["rename"])
    for run in meta(case)["runs"]:
        model = build(case, run, path)
        check_outputs(run_model(model, case, run, gw.make_input(run["input"])), case, run,
                      f"{case}/{run['name']}[legacy flat layout]")


@pytest.mark.parametrize("case", CASES)
def test_config_knobs(case):
    """Knobs the synthetic weights barely exercise (norm eps) are compared directly."""
    m = meta(case)
    opts = {k: v for k, v in m["runs"][0]["rsfm"].items() if k != "wavelengths"}
    with torch.device("meta"):  # structure only
        model = rsfm.create_backbone(m["card"], pretrained=False, **opts, **m["rsfm"]["create_backbone"])
    knobs = m["knobs"]
    if m["family"] == "resnet":
        eps = {mod.eps for mod in model.modules() if isinstance(mod, torch.nn.BatchNorm2d)}
        assert eps == {knobs["bn_eps"]}
        return
    block_eps = {mod.eps for mod in model.blocks.modules() if isinstance(mod, torch.nn.LayerNorm)}
    assert block_eps == {knobs["norm_eps"]}, f"block LayerNorm eps {block_eps} != reference {knobs['norm_eps']}"
    if m["family"] == "prithvi":
        assert model.norm.eps == knobs["final_norm_eps"]
        assert model.patch_size == knobs["patch_size"][1] and model.tubelet_size == knobs["tubelet_size"]
    else:
        assert not hasattr(model, "norm"), "DOFA features are raw block outputs"


def test_every_card_has_a_golden_case():
    missing = sorted(set(rsfm.list_backbones()) - set(CASES))
    assert not missing, (
        f"Cards without golden parity files: {missing}. Add them to tests/reference/make_golden.py and "
        f"regenerate (tests/reference/README.md)."
    )
