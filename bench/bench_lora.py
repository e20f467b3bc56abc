"""LoRA vs full fine-tuning on a ViT-B backbone: trainable-parameter share and step time.

    .venv/bin/python bench/bench_lora.py [--backbone dofa_base] [--steps 3] [--batch 2] [--size 224]

Builds ``backbone + neck + FCN head`` segmentation models (random init: no download), then times
forward + backward + AdamW steps with every parameter trainable and with LoRA (peft) on the card's
``lora_targets`` (attention qkv/proj) with neck and head trainable. CPU numbers on this machine;
the relative saving is what matters (backward skips the frozen weights' gradients, the optimizer
touches far fewer tensors).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def build(backbone: str, bands: list[str]):
    from rsfm.factory import create_model

    torch.manual_seed(0)
    return create_model({"task": "segmentation", "backbone": backbone, "head": "fcn",
                         "num_classes": 2, "bands": bands})


def time_steps(model, x, y, steps: int) -> list[float]:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    times = []
    for i in range(steps + 1):  # first step warms up allocators and kernels
        t0 = time.perf_counter()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i:
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="dofa_base")
    ap.add_argument("--bands", nargs="+", default=["B2", "B3", "B4", "B8", "B11", "B12"])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--rank", type=int, default=16)
    args = ap.parse_args()

    from rsfm.lora import apply_lora, count_parameters

    torch.manual_seed(0)
    x = torch.randn(args.batch, len(args.bands), args.size, args.size)
    y = torch.randint(0, 2, (args.batch, args.size, args.size))
    full = build(args.backbone, args.bands)
    f_train, f_total = count_parameters(full)
    bb_total = sum(p.numel() for p in full.backbone.parameters())
    f_times = time_steps(full, x, y, args.steps)
    del full
    lora = apply_lora(build(args.backbone, args.bands), r=args.rank, alpha=2 * args.rank)
    l_train, l_total = count_parameters(lora)
    l_bb = sum(p.numel() for n, p in lora.backbone.named_parameters() if p.requires_grad)
    l_times = time_steps(lora, x, y, args.steps)

    f_step, l_step = statistics.mean(f_times), statistics.mean(l_times)
    print(f"{args.backbone} (ViT-B/16 backbone, {bb_total / 1e6:.1f}M params) + neck + FCN head, "
          f"batch {args.batch} x {len(args.bands)} bands x {args.size}^2, "
          f"{torch.get_num_threads()} CPU threads, {args.steps} timed steps")
    print(f"{'mode':<16}{'trainable':>14}{'total':>14}{'share':>9}{'step (s)':>11}")
    print(f"{'full fine-tune':<16}{f_train:>14,}{f_total:>14,}{100 * f_train / f_total:>8.2f}%"
          f"{f_step:>11.2f}")
    print(f"{'LoRA r=' + str(args.rank):<16}{l_train:>14,}{l_total:>14,}"
          f"{100 * l_train / l_total:>8.2f}%{l_step:>11.2f}")
    print(f"LoRA adapter alone: {l_bb:,} parameters = {100 * l_bb / bb_total:.2f}% of the backbone;"
          f" step time {l_step / f_step:.2f}x of full fine-tuning "
          f"({100 * (1 - l_step / f_step):.0f}% faster)")


if __name__ == "__main__":
    main()
