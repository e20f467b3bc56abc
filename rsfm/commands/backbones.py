"""``rsfm backbones [PATTERN]``: a table of registered backbones.

Everything comes from the adapter cards (parameter counts included: ``num_params``), so the
table needs no model and no torch.
"""

from __future__ import annotations

import argparse
import difflib

from rsfm.cards import get_card, match_names
from rsfm.errors import UnknownNameError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rsfm backbones``."""
    parser.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'prithvi*'")
    parser.add_argument("--no-params", action="store_true", help="leave out the parameter counts")


def _human(n: int | None) -> str:
    if n is None:  # a user card without num_params (rsfm.registry.count_parameters computes it)
        return "-"
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def run(args: argparse.Namespace) -> int:
    """Print name, family, parameters, bands, licence and Hub repo for each matching card."""
    names = match_names(args.pattern)
    if not names:
        close = difflib.get_close_matches(args.pattern.strip("*?"), match_names("*"), n=5,
                                          cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownNameError(f"No backbone matches {args.pattern!r}.{hint} `rsfm backbones` "
                               "lists them all.")
    rows = [("name", "family", "params", "bands", "license", "hub repo")]
    for name in names:
        card = get_card(name)
        params = "-" if args.no_params else _human(card.num_params)
        bands = ",".join(card.band_names) if card.family != "dofa" else "any (by wavelength)"
        hub = card.weights.repo_id if card.weights else "-"
        rows.append((name, card.family, params, bands, card.license, hub))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return 0
