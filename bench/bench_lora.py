"""LoRA vs full fine-tuning on a ViT-B backbone: trainable-parameter share, step time, memory.

    .venv/bin/python bench/bench_lora.py [--backbone dofa_base] [--batch 2] [--size 224] [--reps 2]

Builds ``backbone + neck + FCN head`` segmentation models (random init: no download) and times
training steps (forward, cross-entropy, backward, AdamW) with every parameter trainable
(``full``, the named baseline) and with LoRA (peft) on the card's ``lora_targets`` (attention
qkv/proj) with neck and head trainable. Each configuration runs in fresh subprocesses,
interleaved (``bench/_harness.py``); backward skips the frozen weights' gradients and the
optimizer touches far fewer tensors.
"""

from __future__ import annotations

import argparse
from typing import Any

from _harness import Config, add_arguments, machine_header, measure, serve, table, write_section


def build(p: dict[str, Any]) -> Any:
    """A training step of the full or LoRA model (the harness times ``step``)."""
    import torch

    from rsfm.factory import create_model
    from rsfm.lora import apply_lora, count_parameters

    torch.manual_seed(0)
    model = create_model("segmentation", p["backbone"], head="fcn", num_classes=2, bands=p["bands"])
    if p["rank"]:
        model = apply_lora(model, r=p["rank"], alpha=2 * p["rank"])
    trainable, total = count_parameters(model)
    x = torch.randn(p["batch"], len(p["bands"]), p["size"], p["size"])
    y = torch.randint(0, 2, (p["batch"], p["size"], p["size"]))
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()

    def step() -> None:
        out = model(x)
        out = out["out"] if isinstance(out, dict) else out
        loss_fn(out, y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step, {"trainable_M": trainable / 1e6, "share_%": 100 * trainable / total}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="dofa_base")
    ap.add_argument("--bands", nargs="+", default=["B2", "B3", "B4", "B8", "B11", "B12"])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--rank", type=int, default=16)
    add_arguments(ap, reps=2, warmup=1, steps=3, timeout=900)
    args = ap.parse_args()
    header = machine_header(args.threads, args.jobs)
    print(header)
    base = {"backbone": args.backbone, "bands": args.bands, "batch": args.batch, "size": args.size}
    cfgs = [Config("full", {**base, "rank": 0}, note="every parameter trainable"),
            Config(f"lora-r{args.rank}", {**base, "rank": args.rank},
                   note="LoRA on the card's lora_targets; neck and head trainable")]
    res = measure(__file__, cfgs, reps=args.reps, warmup=args.warmup, steps=args.steps,
                  threads=args.threads, jobs=args.jobs, timeout=args.timeout)
    md = table(res, time_baseline="full", info_keys=["trainable_M", "share_%"])
    print(md)
    title = (f"{args.backbone} + neck + FCN head, batch {args.batch} x {len(args.bands)} bands x "
             f"{args.size}^2, train step (AdamW)")
    write_section(args.markdown, "LoRA (`bench_lora.py`)", f"{header}\n\n### {title}\n\n{md}")


if __name__ == "__main__":
    if not serve(build):
        main()
