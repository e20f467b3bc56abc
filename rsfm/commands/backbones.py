"""``rsfm backbones [PATTERN]``: a table of registered backbones."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rsfm backbones``."""
    parser.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'prithvi*'")
    parser.add_argument("--no-params", action="store_true", help="skip the parameter count (faster)")


def _human(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def run(args: argparse.Namespace) -> int:
    """Print name, family, parameters, bands, licence and Hub repo for each matching card."""
    from rsfm.registry import backbone_card, count_parameters, list_backbones

    names = list_backbones(args.pattern)
    if not names:
        print(f"No backbone matches {args.pattern!r}. Try `rsfm backbones` for the full list.")
        return 1
    rows = [("name", "family", "params", "bands", "license", "hub repo")]
    for name in names:
        card = backbone_card(name)
        params = "-" if args.no_params else _human(count_parameters(name))
        bands = ",".join(card.band_names) if card.family != "dofa" else "any (by wavelength)"
        hub = card.weights.repo_id if card.weights else "-"
        rows.append((name, card.family, params, bands, card.license, hub))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return 0
