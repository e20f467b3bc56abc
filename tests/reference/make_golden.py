"""Write the golden parity files ``tests/reference/golden/<case>.{json,safetensors}``.

Each case runs a REFERENCE implementation (TerraTorch's ``PrithviMAE``, TorchGeo's ``DOFA``,
timm's / TorchGeo's ResNets) in the official key layout, at reduced depth/width where the
reference constructor allows it, on synthetic weights and inputs (``golden_weights.py``), and
stores the config, the weight rules with a SHA-256 of the state dict, the package versions and
the reference outputs reshaped the way rsfm returns them. ``tests/test_parity_golden.py`` then
checks rsfm against these files in every ``make test``, without TerraTorch or TorchGeo.

Run it in a throwaway venv, never in the project's (see ``tests/reference/README.md``)::

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 terratorch==1.2.11 \\
        torchgeo==0.8.1 timm==1.0.31 safetensors
    /tmp/refvenv/bin/python tests/reference/make_golden.py            # all cases
    /tmp/refvenv/bin/python tests/reference/make_golden.py --only dofa_base --out /tmp/g

It imports nothing from rsfm: the reference side never sees rsfm's code or cards.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.metadata as md
import json
import math
import platform
import re
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import golden_weights as gw
import torch
from einops import rearrange
from safetensors.torch import save_file

SEED = "rsfm-golden-1"
TOL = 1e-4  # max |ours - ref| / max |ref|, float32 (shared/checkpoints/README.md section 5)
# Reduced width/depth for the ViTs (official: 768-1280 wide, 12-32 deep, 12-16 heads). 48 is the
# smallest width that keeps every sin-cos split even and != the head count; 3 heads of 16.
VIT = {"embed_dim": 48, "depth": 3, "num_heads": 3}
GRID = 4  # pretraining grid of the reduced ViTs, in patches per side (official 224 px: 14 or 16)
STD1 = {"uniform": [0.0, round(math.sqrt(3.0), 7)]}  # inputs: U[-sqrt 3, sqrt 3), unit variance
MANIFESTS = Path("/work/shared/checkpoints")  # full-size key layouts of the official files, if present

# ---------------------------------------------------------------------------------------------
# weight rules


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def rule_for(key: str, tensor: torch.Tensor) -> dict:
    """How a tensor is synthesised: realistic scales, no tensor left at a symmetric default.

    Norm gains are 1 +- 0.25 and biases +- 0.05 (at init they are 1 and 0, which would hide swapped
    norm keys); BatchNorm statistics are random (positive variances); Prithvi-TL coordinate scales
    0.3 +- 0.1 (init 0.1); tokens and positional tables +- 0.5; other weights U(+-sqrt(3/fan_in)).
    """
    name = key.rsplit(".", 1)[-1]
    if not tensor.is_floating_point():
        return {"const": 0}  # BatchNorm num_batches_tracked (unused in eval)
    if name == "running_mean":
        return {"uniform": [0.0, 0.2]}
    if name == "running_var":
        return {"uniform": [1.0, 0.5]}
    if name == "scale" and tensor.numel() == 1:
        return {"uniform": [0.3, 0.1]}
    if name in {"cls_token", "mask_token", "weight_tokens", "bias_token"} or name.endswith("pos_embed"):
        return {"uniform": [0.0, 0.5]}
    if tensor.ndim == 1 and name == "weight":
        return {"uniform": [1.0, 0.25]}
    if name.endswith("bias"):
        return {"uniform": [0.0, 0.05]}
    fan_in = tensor[0].numel() if tensor.ndim > 1 else tensor.numel()
    return {"uniform": [0.0, _sig(math.sqrt(3.0 / fan_in))]}


def weights_entry(case: str, state: dict[str, torch.Tensor], fmt: str, filename: str) -> dict:
    layout = [
        {"key": k, "shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch."), "init": rule_for(k, v)}
        for k, v in state.items()
    ]
    entry = {"seed": f"{SEED}/{case}", "format": fmt, "filename": filename, "layout": layout}
    synth = gw.make_state(entry)
    entry["num_tensors"] = len(synth)
    entry["num_elements"] = sum(v.numel() for v in synth.values())
    entry["sha256"] = gw.state_digest(synth)
    return entry


def check_manifest(layout: list[dict], manifest: str, reduced: dict[str, int]) -> str:
    """Compare our layout with the official file's manifest (key names, order, ndim, dtype).

    ``reduced`` maps a block-list prefix to the depth kept here (e.g. ``{"blocks": 3}``): keys of
    deeper blocks are removed from the manifest first. Without reduction, shapes must match too.
    """
    path = MANIFESTS / manifest
    if not path.is_file():
        return f"not checked ({path} not found)"
    official = json.loads(path.read_text())
    kept = {}
    for key, (shape, dtype) in official.items():
        m = re.search(r"(?:^|\.)(blocks|decoder_blocks)\.(\d+)\.", key)
        if m and m.group(1) in reduced and int(m.group(2)) >= reduced[m.group(1)]:
            continue
        kept[key] = (shape, dtype)
    ours = [spec["key"] for spec in layout]
    if ours != list(kept):
        only_ours = sorted(set(ours) - set(kept))
        only_theirs = sorted(set(kept) - set(ours))
        raise SystemExit(f"{manifest}: key layout differs: only here {only_ours[:5]}, only official "
                         f"{only_theirs[:5]} (or a different order)")
    for spec in layout:
        shape, dtype = kept[spec["key"]]
        if dtype != spec["dtype"] or len(shape) != len(spec["shape"]) or (not reduced and shape != spec["shape"]):
            raise SystemExit(f"{manifest}: {spec['key']} is {spec['shape']} {spec['dtype']} here, "
                             f"{shape} {dtype} in the official file")
    what = "names, order, ndim and dtype" + ("" if reduced else ", shapes")
    cut = ", ".join(f"{k} >= {v}" for k, v in reduced.items())
    return f"same {what} as shared/checkpoints/{manifest}" + (f" without {cut}" if cut else "")


def input_spec(case: str, run: str, shape: list[int]) -> dict:
    return {"shape": shape, "seed": f"{SEED}/{case}/input/{run}", "init": STD1}


def block_hooks(blocks: torch.nn.ModuleList) -> tuple[list[torch.Tensor], list]:
    captured: list[torch.Tensor] = []
    handles = [b.register_forward_hook(lambda m, i, o: captured.append(o.detach().clone())) for b in blocks]
    return captured, handles


# ---------------------------------------------------------------------------------------------
# Prithvi (TerraTorch's PrithviMAE = the Hub prithvi_mae.py)

# Official configs (Hub config.json; shared/checkpoints/README.md section 2.2).
PRITHVI = {
    "prithvi_eo_v1_100m": {"patch": 16, "num_frames": 3, "tl": False},
    "prithvi_eo_v2_300m": {"patch": 16, "num_frames": 4, "tl": False},
    "prithvi_eo_v2_300m_tl": {"patch": 16, "num_frames": 4, "tl": True},
    "prithvi_eo_v2_600m": {"patch": 14, "num_frames": 4, "tl": False},
    "prithvi_eo_v2_600m_tl": {"patch": 14, "num_frames": 4, "tl": True},
}
PRITHVI_BANDS = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]


def prithvi_kwargs(cfg: dict, frames: int) -> dict:
    p = cfg["patch"]
    return {
        "img_size": GRID * p, "patch_size": [1, p, p], "num_frames": frames, "in_chans": 6, **VIT,
        "decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 2, "mlp_ratio": 4.0,
        "coords_encoding": ["time", "location"] if cfg["tl"] else None, "coords_scale_learn": cfg["tl"],
    }


def case_prithvi(case: str) -> tuple[dict, dict[str, torch.Tensor]]:
    from terratorch.models.backbones.prithvi_mae import PrithviMAE

    cfg = PRITHVI[case]
    p, tl = cfg["patch"], cfg["tl"]
    torch.manual_seed(0)
    file_model = PrithviMAE(**prithvi_kwargs(cfg, cfg["num_frames"]))  # the official file's layout
    weights = weights_entry(case, file_model.state_dict(), "torch", f"{case}.pt")
    state = gw.make_state(weights)
    enc = file_model.encoder
    knobs = {
        "patch_size": list(enc.patch_embed.patch_size), "tubelet_size": enc.patch_embed.patch_size[0],
        "pretrain_num_frames": cfg["num_frames"], "img_size": list(enc.img_size),
        "norm_eps": enc.blocks[0].norm1.eps, "final_norm_eps": enc.norm.eps,
        "mlp_ratio": enc.blocks[0].mlp.fc1.out_features / VIT["embed_dim"],
        "qkv_bias": enc.blocks[0].attn.qkv.bias is not None,
        "coords_encoding": ["time", "location"] if tl else [], "coords_scale_learn": tl,
        "pos_embed": "fixed 3-D sin-cos (recomputed for the input's frames; bicubic, align_corners=True, "
                     "for other sizes); the file's pos_embed tensors are discarded as the Hub inference.py does",
    }
    tensors: dict[str, torch.Tensor] = {}
    runs = []
    plan = [("t1", 1, (GRID, GRID), tl), ("t3", 3, (GRID, GRID), tl),
            ("t1_rect", 1, (5, 3), tl), ("t3_rect", 3, (3, 5), tl)]
    if tl:
        plan.append(("t3_nocoords", 3, (GRID, GRID), False))
    for name, frames, (gh, gw_), coords in plan:
        ref = PrithviMAE(**prithvi_kwargs(cfg, frames)).eval()
        missing, unexpected = ref.load_state_dict({k: v for k, v in state.items() if "pos_embed" not in k},
                                                  strict=False)
        assert not unexpected and sorted(missing) == ["decoder.decoder_pos_embed", "encoder.pos_embed"], (
            missing, unexpected)
        spec = input_spec(case, name, [2, 6, frames, gh * p, gw_ * p])
        x = gw.make_input(spec)
        call: dict[str, str] = {}
        kwargs = {}
        if coords:
            tc = torch.tensor([[[2019.0 + t, 35.0 + 101.0 * t] for t in range(frames)],
                               [[2023.0 - t, 300.0 - 57.0 * t] for t in range(frames)]])
            lc = torch.tensor([[34.2, -118.1], [-3.5, 25.0]])  # (lat, lon)
            kwargs = {"temporal_coords": tc, "location_coords": lc}
            for k, v in kwargs.items():
                tensors[f"{name}.{k}"] = v
                call[k] = f"{name}.{k}"
        with torch.no_grad():
            feats = ref.encoder.forward_features(x, **kwargs)  # every block; the last after encoder.norm
        outputs = []
        for i, f in enumerate(feats):
            # terratorch's prepare_features_for_image_model pattern, with the grid given explicitly
            tensors[f"{name}.out{i}"] = rearrange(f[:, 1:], "b (t h w) e -> b (t e) h w", t=frames, h=gh, w=gw_)
            outputs.append(f"{name}.out{i}")
        runs.append({
            "name": name, "input": spec, "call": call, "outputs": outputs,
            "rsfm": {"num_frames": frames, "out_indices": list(range(VIT["depth"]))},
            "reference_call": f"PrithviMAE(num_frames={frames}, ...).encoder.forward_features(x"
                              + "".join(f", {k}=..." for k in kwargs) + ")",
        })
    meta = {
        "family": "prithvi", "card": case,
        "reference": {
            "implementation": "terratorch.models.backbones.prithvi_mae.PrithviMAE",
            "kwargs": prithvi_kwargs(cfg, cfg["num_frames"]),
            "note": "decoder reduced to 1 block of width 32 (the encoder never reads it); per run the "
                    "model is built with num_frames = input frames and loaded without the pos_embed "
                    "tensors (Hub inference.py / terratorch checkpoint filter)",
            "sources": source_hashes(["terratorch.models.backbones.prithvi_mae", "timm.models.vision_transformer"]
                                     + (["terratorch.models.backbones.prithvi_vit"] if case == "prithvi_eo_v1_100m" else [])),
        },
        "knobs": knobs, "weights": weights,
        "rsfm": {"create_backbone": {**VIT, "img_size": GRID * p}},
        "layout_check": check_manifest(weights["layout"], f"{case}.json", {"blocks": VIT["depth"], "decoder_blocks": 1}),
        "runs": runs,
    }
    if case == "prithvi_eo_v1_100m":
        meta["legacy_layout"] = legacy_prithvi_layout(file_model, state)
    return meta, tensors


def legacy_prithvi_layout(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict:
    """The 2023 flat V1 layout, checked with TerraTorch's converter (flat -> encoder./decoder.)."""
    from terratorch.datasets import HLSBands
    from terratorch.models.backbones.prithvi_vit import checkpoint_filter_fn_mae

    rename = {k: k.split(".", 1)[1] for k in state}
    flat = {rename[k]: v.clone() for k, v in state.items()}
    bands = [HLSBands(b) for b in PRITHVI_BANDS]
    back = checkpoint_filter_fn_mae(flat, model, bands, bands)
    assert list(back) == list(state), "terratorch maps the flat layout to different keys"
    for k, v in back.items():
        assert "pos_embed" in k or torch.equal(v, state[k]), k  # the filter swaps in the model's tables
    return {"rename": rename, "checked_with": "terratorch.models.backbones.prithvi_vit.checkpoint_filter_fn_mae "
            "maps these flat keys back to the encoder./decoder. layout with identical tensors"}


# ---------------------------------------------------------------------------------------------
# DOFA (TorchGeo's DOFA = the original models_dwv.py with the 2024 patch-embedding fix)

DOFA_CARDS = ["dofa_base", "dofa_base_torchgeo", "dofa_large", "dofa_large_torchgeo"]
S2_WAVES = [0.665, 0.56, 0.49, 0.705, 0.74, 0.783, 0.842, 1.61, 2.19]  # DOFA README, Sentinel-2 9 bands
NAIP_WAVES = [0.48, 0.56, 0.64, 0.81]  # TorchGeo DOFA docstring example


def case_dofa(case: str) -> tuple[dict, dict[str, torch.Tensor]]:
    from torchgeo.models.dofa import DOFA

    # dofa_{base,large}_patch16_224 = DOFA(patch_size=16, embed_dim, depth, num_heads); here reduced.
    kwargs = {"img_size": GRID * 16, "patch_size": 16, **VIT}
    torch.manual_seed(0)
    ref = DOFA(**kwargs).eval()
    d = VIT["embed_dim"]
    layout_state = {k: v for k, v in ref.state_dict().items() if not k.startswith(("fc_norm.", "head."))}
    original = not case.endswith("_torchgeo")
    if original:  # the earthflow/DOFA e100 files also hold MAE-pretraining leftovers
        items = list(layout_state.items())
        layout_state = dict([*items[:2], ("mask_token", torch.zeros(1, 1, 512)), *items[2:]])
        layout_state.update({"norm.weight": torch.ones(d), "norm.bias": torch.zeros(d),
                             "projector.weight": torch.zeros(d, d), "projector.bias": torch.zeros(d)})
    filename = f"{case}.pth"
    weights = weights_entry(case, layout_state, "torch", filename)
    state = gw.make_state(weights)
    missing, unexpected = ref.load_state_dict(state, strict=False)
    assert set(missing) == {"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"}, missing
    assert set(unexpected) == ({"mask_token", "norm.weight", "norm.bias", "projector.weight", "projector.bias"}
                               if original else set()), unexpected
    tensors: dict[str, torch.Tensor] = {}
    runs = []
    for name, waves, per_call in (("s2_9band", S2_WAVES, False), ("naip_4band", NAIP_WAVES, True)):
        spec = input_spec(case, name, [2, len(waves), GRID * 16, GRID * 16])
        x = gw.make_input(spec)
        captured, handles = block_hooks(ref.blocks)
        with torch.no_grad():
            ref.forward_features(x, waves)
        for h in handles:
            h.remove()
        outputs = []
        for i, tok in enumerate(captured):  # raw block outputs (no final norm in OFAViT)
            tensors[f"{name}.out{i}"] = rearrange(tok[:, 1:], "b (h w) e -> b e h w", h=GRID, w=GRID)
            outputs.append(f"{name}.out{i}")
        runs.append({
            "name": name, "input": spec, "call": {}, "outputs": outputs, "wavelengths": waves,
            "rsfm": {"out_indices": list(range(VIT["depth"])),
                     "wavelengths": "per_call" if per_call else "card"},
            "reference_call": "DOFA(...).forward_features(x, wavelengths), hooks on every block",
        })
    blk = ref.blocks[0]
    knobs = {
        "patch_size": 16, "patch_padding": "1 (F.conv2d(..., stride=16, padding=1) in DOFAEmbedding.forward)",
        "dynamic_embed_dim": ref.patch_embed.dynamic_embed_dim, "weight_scaler": ref.patch_embed.scaler,
        "weight_generator": "1 post-norm TransformerEncoderLayer(128, 4 heads, ffn 2048, gelu), 128 weight tokens",
        "norm_eps": blk.norm1.eps, "mlp_ratio": blk.mlp.fc1.out_features / d, "qkv_bias": blk.attn.qkv.bias is not None,
        "pos_embed": "from the file (fixed sin-cos in the official files; synthetic here, so it must be read)",
        "final_norm": "none for features (OFAViT pools and applies fc_norm, not in the file)",
    }
    manifest = {"dofa_base": "dofa_base.json", "dofa_large": "dofa_large.json",
                "dofa_base_torchgeo": "dofa_base_torchgeo.json", "dofa_large_torchgeo": "dofa_large_torchgeo.json"}[case]
    size = "large" if "large" in case else "base"
    meta = {
        "family": "dofa", "card": case,
        "reference": {
            "implementation": "torchgeo.models.dofa.DOFA", "kwargs": kwargs,
            "note": f"= dofa_{size}_patch16_224() with embed_dim/depth/num_heads/img_size reduced; "
                    "the weight generator has no size argument and stays full size",
            "sources": source_hashes(["torchgeo.models.dofa", "timm.models.vision_transformer"]),
        },
        "knobs": knobs, "weights": weights,
        "rsfm": {"create_backbone": {**VIT, "img_size": GRID * 16}},
        "layout_check": check_manifest(weights["layout"], manifest, {"blocks": VIT["depth"]}),
        "runs": runs,
    }
    return meta, tensors


# ---------------------------------------------------------------------------------------------
# ResNet (timm, and TorchGeo's SSL4EO builders, which are timm models without fc)

RESNET = {  # card: (source, depth, in_chans, manifest)
    "resnet18": ("timm", 18, 3, None),
    "resnet50": ("timm", 50, 3, "resnet50_timm.json"),
    "resnet101": ("timm", 101, 3, None),
    "resnet18_ssl4eo_s2_moco": ("torchgeo", 18, 13, None),
    "resnet50_ssl4eo_s2_moco": ("torchgeo", 50, 13, "resnet50_ssl4eo_s2_moco.json"),
}


def case_resnet(case: str) -> tuple[dict, dict[str, torch.Tensor]]:
    import timm

    source, depth, chans, manifest = RESNET[case]

    def build(**kw: object) -> torch.nn.Module:
        if source == "timm":
            return timm.create_model(f"resnet{depth}", in_chans=chans, **kw).eval()
        tg = importlib.import_module("torchgeo.models")
        return getattr(tg, f"resnet{depth}")(None, in_chans=chans, **kw).eval()

    torch.manual_seed(0)
    ref = build()
    layout_state = ref.state_dict()
    if source == "torchgeo":  # the SSL4EO files have no classifier
        layout_state = {k: v for k, v in layout_state.items() if not k.startswith("fc.")}
    fmt, filename = ("safetensors", f"{case}.safetensors") if source == "timm" else ("torch", f"{case}.pth")
    weights = weights_entry(case, layout_state, fmt, filename)
    state = gw.make_state(weights)
    tensors: dict[str, torch.Tensor] = {}
    runs = []
    plan = [("os32", 32, (32, 48), [0, 1, 2, 3])]
    if case == "resnet50":
        plan += [("os16", 16, (32, 32), [3]), ("os8", 8, (32, 32), [3])]
    for name, stride, (h, w), indices in plan:
        model = ref if stride == 32 else build(output_stride=stride)
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert not unexpected and set(missing) <= {"fc.weight", "fc.bias"}, (missing, unexpected)
        assert (source == "torchgeo") == bool(missing)
        spec = input_spec(case, name, [1, chans, h, w])
        x = gw.make_input(spec)
        stages = [model.layer1, model.layer2, model.layer3, model.layer4]
        captured, handles = block_hooks(torch.nn.ModuleList(stages[i] for i in indices))
        with torch.no_grad():
            model(x)
        for hd in handles:
            hd.remove()
        outputs = []
        for i, out in zip(indices, captured):
            tensors[f"{name}.layer{i + 1}"] = out
            outputs.append(f"{name}.layer{i + 1}")
        runs.append({
            "name": name, "input": spec, "call": {}, "outputs": outputs,
            "rsfm": {"out_indices": indices, **({"output_stride": stride} if stride != 32 else {})},
            "reference_call": f"{'timm.create_model' if source == 'timm' else 'torchgeo.models.resnet' + str(depth)}"
                              f"(..., output_stride={stride}) forward, hooks on layer{[i + 1 for i in indices]}",
        })
    impl = (f"timm.create_model('resnet{depth}', in_chans={chans})" if source == "timm"
            else f"torchgeo.models.resnet{depth}(weights=None, in_chans={chans}) (= timm resnet{depth})")
    meta = {
        "family": "resnet", "card": case,
        "reference": {
            "implementation": impl, "kwargs": {"in_chans": chans},
            "note": "full size (no width argument); the file layout "
                    + ("includes fc.* (timm Hub files)" if source == "timm" else "has no fc.* (TorchGeo SSL4EO files)"),
            "sources": source_hashes(["timm.models.resnet"] + (["torchgeo.models.resnet"] if source == "torchgeo" else [])),
        },
        "knobs": {"block": "BasicBlock" if depth < 50 else "Bottleneck", "stride_in_3x3": True,
                  "bn_eps": ref.bn1.eps, "stem": "7x7/2 conv, 3x3/2 max-pool"},
        "weights": weights,
        "rsfm": {"create_backbone": {}},
        "layout_check": check_manifest(weights["layout"], manifest, {}) if manifest else "no manifest for this file",
        "runs": runs,
    }
    return meta, tensors


# ---------------------------------------------------------------------------------------------

CASES: dict[str, Callable[[str], tuple[dict, dict[str, torch.Tensor]]]] = {
    **{c: case_prithvi for c in PRITHVI},
    **{c: case_dofa for c in DOFA_CARDS},
    **{c: case_resnet for c in RESNET},
}


def source_hashes(modules: list[str]) -> dict[str, str]:
    out = {}
    for name in modules:
        path = Path(importlib.import_module(name).__file__)
        out[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def environment() -> dict:
    versions = {"python": platform.python_version()}
    for dist in ("torch", "torchvision", "timm", "terratorch", "torchgeo", "numpy", "einops", "safetensors"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    return {
        "versions": versions,
        "git_commit": None,
        "git_note": "PyPI wheels carry no commit; sources are identified by the package version and "
                    "the SHA-256 of each reference module file (see reference.sources)",
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "num_threads": torch.get_num_threads(),
    }


def to_json(obj: object, indent: str = "") -> str:
    """JSON with one line per small item (a layout entry, a shape) instead of one per number."""
    flat = json.dumps(obj)
    if len(flat) + len(indent) <= 150 or not isinstance(obj, dict | list):
        return flat
    inner = indent + " "
    if isinstance(obj, dict):
        items = [f"{inner}{json.dumps(k)}: {to_json(v, inner)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    return "[\n" + ",\n".join(inner + to_json(v, inner) for v in obj) + "\n" + indent + "]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted(CASES), help="cases to write (default: all)")
    parser.add_argument("--out", type=Path, default=HERE / "golden", help="output folder")
    args = parser.parse_args()
    importlib.import_module("terratorch")  # sets float32 matmul precision to "medium" at import
    torch.set_float32_matmul_precision("highest")
    torch.set_num_threads(1)
    env = environment()
    args.out.mkdir(parents=True, exist_ok=True)
    for case in args.only or list(CASES):
        meta, tensors = CASES[case](case)
        for run in meta["runs"]:
            run["max_abs_ref"] = [round(float(tensors[k].abs().max()), 6) for k in run["outputs"]]
        meta = {"case": case, **meta, "tolerance": {"max_abs_diff_over_max_abs_ref": TOL},
                "environment": env, "script": "tests/reference/make_golden.py"}
        save_file({k: v.contiguous().float() if v.is_floating_point() else v.contiguous() for k, v in tensors.items()},
                  str(args.out / f"{case}.safetensors"), metadata={"case": case})
        (args.out / f"{case}.json").write_text(to_json(meta) + "\n")
        size = (args.out / f"{case}.safetensors").stat().st_size + (args.out / f"{case}.json").stat().st_size
        print(f"{case}: {len(meta['runs'])} runs, {meta['weights']['num_elements']:,} synthetic weights, "
              f"{size / 1024:.0f} KiB; layout: {meta['layout_check']}")


if __name__ == "__main__":
    main()
