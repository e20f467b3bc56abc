"""One class palette for every picture rsfm makes (batches, training plots, rasters, previews).

Class 0 is dark grey (often background); the next classes follow the colour-blind-friendly
Okabe-Ito palette (blue first, so a binary water/building/flood map reads naturally), then tab20.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["CLASS_COLORS", "class_colors", "class_colors_hex"]

CLASS_COLORS: tuple[tuple[int, int, int], ...] = (
    (60, 60, 60), (0, 114, 178), (230, 159, 0), (0, 158, 115), (240, 228, 66), (213, 94, 0),
    (86, 180, 233), (204, 121, 167), (255, 255, 255), (31, 119, 180), (255, 127, 14),
    (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194),
    (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232),
)


def class_colors(n: int, colors: Sequence[Sequence[int]] | None = None) -> list[tuple[int, int, int]]:
    """``n`` RGB colours (0-255): ``colors`` first, then the palette, then a hashed colour."""
    out: list[tuple[int, int, int]] = []
    for i in range(n):
        if colors is not None and i < len(colors):
            c = colors[i]
        elif i < len(CLASS_COLORS):
            c = CLASS_COLORS[i]
        else:  # deterministic, well spread
            c = ((i * 97) % 256, (i * 57 + 80) % 256, (i * 151 + 40) % 256)
        out.append((int(c[0]), int(c[1]), int(c[2])))
    return out


def class_colors_hex(n: int) -> list[str]:
    """The same palette as ``#rrggbb`` strings (for matplotlib)."""
    return ["#{:02x}{:02x}{:02x}".format(*c) for c in class_colors(n)]
