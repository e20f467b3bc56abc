"""Training steps: ResNet-50 DeepLabv3+ against smp/TorchGeo, and bf16 training at 1024 px.

One step = forward, cross-entropy loss, backward, AdamW step, on random data and random weights.
Every configuration runs in fresh subprocesses, interleaved (``bench/_harness.py``).

Suites:

* ``deeplab``: ResNet-50 + DeepLabv3+ at 256 px, batch 2, 3 bands, 2 classes, fp32.
  ``smp-deeplabv3plus`` (``segmentation_models_pytorch.DeepLabV3Plus``, output stride 16, the
  ``bench`` extra) is the named baseline; ``torchgeo-deeplabv3plus`` is TorchGeo's
  ``SemanticSegmentationTask(model="deeplabv3+")`` model when an interpreter with TorchGeo is
  found (it wraps the same smp class); ``rsfm-deeplabv3plus`` is rsfm's default head and
  ``rsfm-deeplabv3plus-full`` its full-width variant (``head_kwargs: {separable: false}``).
  Parameters and forward GFLOP (``torch.utils.flop_counter``, 2 FLOP per multiply-add) are
  reported for the whole model and for the head alone (everything after the encoder).
* ``bf16``: Prithvi-100M (``prithvi_eo_v1_100m``, 3-D patch embedding) and DOFA-Base
  segmentation models (FCN head) at 1024 px, batch 1, ``torch.autocast("cpu", bfloat16)`` as
  ``train.mixed_precision: bf16`` does, with a timeout (a hung bf16 weight gradient is reported
  as such); the fp32 Prithvi step is the named baseline. ``terratorch-prithvi-bf16`` runs
  TerraTorch's Prithvi backbone (forward + backward only) the same way, for the record of the
  earlier stall.

    .venv/bin/python bench/bench_train_step.py [--suite deeplab bf16] [--reps 2] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

from _harness import Config, add_arguments, machine_header, measure, serve, table, write_section

PEER_ENV = "RSFM_BENCH_PEER_PYTHON"


def _flops_params(model: Any, x: Any, head: Any) -> dict[str, float]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    total = counter.get_total_flops()
    by_module = counter.get_flop_counts()
    head_flops = sum(sum(v.values()) for k, v in by_module.items() if k in head)
    model.train()
    return {"params_M": sum(p.numel() for p in model.parameters()) / 1e6, "GFLOP": total / 1e9,
            "head_GFLOP": head_flops / 1e9}


def build(p: dict[str, Any]) -> Any:
    """A training step of the configured model (the harness times ``step``)."""
    import torch

    torch.manual_seed(0)
    kind = p["kind"]
    size, batch, bands, classes = p["size"], p["batch"], p["bands"], 2
    frames = p.get("frames", 1)
    x = torch.randn(batch, bands, size, size)
    y = torch.randint(0, classes, (batch, size, size))
    info: dict[str, Any] = {}
    if kind == "smp":
        import segmentation_models_pytorch as smp

        model = smp.DeepLabV3Plus(encoder_name="resnet50", encoder_weights=None, in_channels=bands,
                                  classes=classes)
        head_mods = {"DeepLabV3Plus.decoder", "DeepLabV3Plus.segmentation_head"}
        head_params = sum(q.numel() for n, q in model.named_parameters() if not n.startswith("encoder."))
    elif kind == "torchgeo":
        from torchgeo.trainers import SemanticSegmentationTask

        task = SemanticSegmentationTask(model="deeplabv3+", backbone="resnet50", weights=None,
                                        in_channels=bands, num_classes=classes)
        model = task.model
        head_mods = {"DeepLabV3Plus.decoder", "DeepLabV3Plus.segmentation_head"}
        head_params = sum(q.numel() for n, q in model.named_parameters() if not n.startswith("encoder."))
    elif kind == "terratorch":
        from terratorch.registry import BACKBONE_REGISTRY

        torch.set_float32_matmul_precision("highest")  # undo TerraTorch's import-time "medium"
        model = BACKBONE_REGISTRY.build("terratorch_prithvi_eo_v1_100", pretrained=False, num_frames=1,
                                        img_size=size)
        head_mods, head_params = set(), 0
    else:
        from rsfm.factory import create_model

        band_names = ["RED", "GREEN", "BLUE", "NIR_NARROW", "SWIR_1", "SWIR_2"][:bands]
        kwargs = dict(p.get("head_kwargs", {}))
        model = create_model("segmentation", p["backbone"], head=p["head"], num_classes=classes,
                             bands=band_names, window_size=p.get("window") or None, **kwargs)
        head_mods = {"RsfmModel.head"}
        head_params = sum(q.numel() for q in model.head.parameters())
        if frames > 1:
            x = torch.randn(batch, bands, frames, size, size)
    if p.get("flops"):
        info.update(_flops_params(model, x, head_mods))
        info["head_params_M"] = head_params / 1e6
    model.train()
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    bf16 = p.get("precision") == "bf16"
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        if kind == "terratorch":
            loss = out[-1].float().mean()
        else:
            out = out["out"] if isinstance(out, dict) else out
            loss = loss_fn(out.float(), y)
        loss.backward()
        if kind != "terratorch":
            opt.step()
        opt.zero_grad(set_to_none=True)

    return step, info


def _imports(python: str, module: str) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True, check=False).returncode == 0


def peer_python(arg: str | None, module: str) -> str | None:
    """The first of ``arg``, ``$RSFM_BENCH_PEER_PYTHON``, this interpreter that imports ``module``."""
    for cand in (sys.executable, arg, os.environ.get(PEER_ENV)):
        if cand and _imports(cand, module):
            return cand
    return None


def deeplab_configs(peer: str | None) -> list[Config]:
    base = {"size": 256, "batch": 2, "bands": 3, "flops": True}
    out = []
    if _imports(sys.executable, "segmentation_models_pytorch"):
        out.append(Config("smp-deeplabv3plus", {**base, "kind": "smp"},
                          note="smp DeepLabV3Plus(resnet50), output stride 16"))
    tg = peer_python(peer, "torchgeo.trainers")
    if tg:
        out.append(Config("torchgeo-deeplabv3plus", {**base, "kind": "torchgeo"}, python=tg,
                          note="TorchGeo SemanticSegmentationTask(model='deeplabv3+')"))
    rs = {**base, "kind": "rsfm", "backbone": "resnet50", "head": "deeplabv3plus"}
    out.append(Config("rsfm-deeplabv3plus", rs, note="default: separable ASPP + decoder, OS 16"))
    out.append(Config("rsfm-deeplabv3plus-full", {**rs, "head_kwargs": {"separable": False}},
                      note="full-width ASPP + two 3x3 convs (rsfm 0.1)"))
    return out


def bf16_configs(peer: str | None, size: int) -> list[Config]:
    base = {"size": size, "batch": 1, "bands": 6, "head": "fcn"}
    out = [
        Config("rsfm-prithvi-fp32", {**base, "kind": "rsfm", "backbone": "prithvi_eo_v1_100m"},
               note="Prithvi-100M + FCN, fp32 (baseline)"),
        Config("rsfm-prithvi-bf16", {**base, "kind": "rsfm", "backbone": "prithvi_eo_v1_100m",
                                     "precision": "bf16"}, note="3-D patch embedding, bf16 autocast"),
        Config("rsfm-prithvi-bf16-window", {**base, "kind": "rsfm", "backbone": "prithvi_eo_v1_100m",
                                            "precision": "bf16", "window": 14},
               note="bf16, window 14"),
        Config("rsfm-dofa-bf16", {**base, "kind": "rsfm", "backbone": "dofa_base", "precision": "bf16"},
               note="DOFA-Base + FCN, bf16 autocast"),
    ]
    tt = peer_python(peer, "terratorch.registry")
    if tt:
        out.append(Config("terratorch-prithvi-bf16", {**base, "kind": "terratorch", "precision": "bf16"},
                          python=tt, note="TerraTorch backbone, forward + backward only"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", nargs="+", choices=["deeplab", "bf16"], default=["deeplab", "bf16"])
    parser.add_argument("--bf16-size", type=int, default=1024)
    parser.add_argument("--only", nargs="+", default=None, help="run only these configurations")
    add_arguments(parser, reps=2, warmup=1, steps=2, timeout=900)
    args = parser.parse_args()
    header = machine_header(args.threads, args.jobs)
    print(header)
    sections = [header]
    if "deeplab" in args.suite:
        cfgs = [c for c in deeplab_configs(args.peer_python) if not args.only or c.name in args.only]
        print("\nResNet-50 DeepLabv3+, 256 px, batch 2, fp32 train step:")
        res = measure(__file__, cfgs, reps=args.reps, warmup=args.warmup, steps=max(args.steps, 3),
                      threads=args.threads, jobs=args.jobs, timeout=args.timeout)
        base = next((c.name for c in cfgs if c.name.startswith(("smp", "torchgeo"))), cfgs[0].name)
        md = table(res, time_baseline=base, info_keys=["params_M", "GFLOP", "head_params_M", "head_GFLOP"])
        print(md)
        sections.append(f"### ResNet-50 DeepLabv3+, 256 px, batch 2, fp32 train step (AdamW)\n\n{md}")
    if "bf16" in args.suite:
        cfgs = [c for c in bf16_configs(args.peer_python, args.bf16_size) if not args.only or c.name in args.only]
        print(f"\nbf16 training, {args.bf16_size} px, batch 1:")
        res = measure(__file__, cfgs, reps=1, warmup=args.warmup, steps=1, threads=args.threads,
                      jobs=args.jobs, timeout=args.timeout)
        md = table(res, time_baseline="rsfm-prithvi-fp32" if any(c.name == "rsfm-prithvi-fp32" for c in cfgs)
                   else None)
        print(md)
        sections.append(f"### bf16 autocast train step, {args.bf16_size} px, batch 1 (timeout "
                        f"{args.timeout:.0f} s per run)\n\n{md}")
    write_section(args.markdown, "Training steps (`bench_train_step.py`)", "\n\n".join(sections))


if __name__ == "__main__":
    if not serve(build):
        main()
