"""One validator for every config file: pydantic at the boundary, our messages on top.

:func:`validate` turns a mapping (a recipe, a ``config.json``, a card) into the frozen dataclass
it describes. Each problem is reported on one line with its YAML/JSON path
(``train.optimizer.lr``), the value that arrived, and close matches for misspelt keys and choices.
Checks the dataclasses make themselves (``__post_init__``) come back through the same path.
"""

from __future__ import annotations

import dataclasses
import difflib
import reprlib
import types
import typing
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, TypeVar

from rsfm.errors import ConfigError

__all__ = ["dump", "short_repr", "validate"]

T = TypeVar("T")

MAX_LINES = 20  # problems listed in one message (the rest are counted)
MAX_LINE = 600  # characters of one problem line
MAX_CHARS = 2400  # characters of all problem lines
_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxtuple = 80, 80, 4, 4
_REPR.maxdict, _REPR.maxlevel = 4, 3


def short_repr(value: Any, limit: int = 200) -> str:
    """``repr(value)`` cut to about ``limit`` characters (a GeoJSON pasted into a config file is
    named, not printed)."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ..."


@cache
def _adapter(cls: type) -> Any:
    from pydantic import TypeAdapter  # lazy: `import rsfm` stays light

    return TypeAdapter(cls)


def validate(cls: type[T], data: Any, what: str) -> T:
    """Validate ``data`` into ``cls``.

    Args:
        cls: A (frozen, stdlib) dataclass type.
        data: The parsed YAML/JSON mapping.
        what: What is being read, for the first line of the message ("recipe 'x.yaml'").

    Raises:
        ConfigError: Every problem, one per line, with its key path.
    """
    from pydantic import ValidationError

    if not isinstance(data, Mapping):
        raise ConfigError(f"Invalid {what}: expected a mapping, got {type(data).__name__}.")
    booleans = _booleans_for_numbers(cls, data, ())
    try:
        out = _adapter(cls).validate_python(dict(data))
    except ValidationError as err:
        raise ConfigError(_message(what, booleans + _lines(err, cls))) from None
    if booleans:  # pydantic reads true/false as 1/0 for numbers: data.batch_size: true is 1
        raise ConfigError(_message(what, booleans))
    return out


def _message(what: str, lines: list[str]) -> str:
    """``Invalid <what>:`` and one line per problem, at most :data:`MAX_LINES` lines and about
    :data:`MAX_CHARS` characters (the rest are counted)."""
    lines = [line if len(line) <= MAX_LINE else line[: MAX_LINE - 4] + " ..."
             for line in dict.fromkeys(lines)]
    shown: list[str] = []
    for line in lines:
        if len(shown) == MAX_LINES or sum(map(len, shown)) + len(line) > MAX_CHARS:
            break
        shown.append(line)
    if len(shown) < len(lines):
        shown.append(f"... and {len(lines) - len(shown)} more problem(s)")
    return f"Invalid {what}:\n  " + "\n  ".join(shown)


def _number_types(hint: Any) -> tuple[type, ...] | None:
    """``(int,)``/``(float,)``... when ``hint`` is a number (or an optional one), else None."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = typing.get_args(hint) if union else (hint,)
    args = tuple(a for a in args if a is not type(None))
    return args if args and all(a in (int, float) for a in args) else None


def _booleans_for_numbers(cls: Any, data: Any, loc: tuple[Any, ...]) -> list[str]:
    """Problem lines for YAML booleans given where the dataclass ``cls`` wants numbers (or
    tuples of numbers), in ``data`` and its nested sections."""
    if not dataclasses.is_dataclass(cls) or not isinstance(data, Mapping):
        return []
    hints, out = _hints(cls), []
    for name, value in data.items():
        hint = hints.get(str(name))
        if hint is None:
            continue
        path = _fmt_loc((*loc, name))
        numbers = _number_types(hint)
        items = None
        for arg in (hint, *typing.get_args(hint)):
            if typing.get_origin(arg) is tuple:
                inner = [a for a in typing.get_args(arg) if a is not Ellipsis]
                if inner and all(_number_types(a) for a in inner):
                    items = inner
        kind = "an integer" if numbers == (int,) else "a number"
        if numbers and isinstance(value, bool):
            out.append(f"{path}: must be {kind}, got {str(value).lower()} (YAML reads true/false, "
                       "yes/no, on/off as booleans)")
        elif items and isinstance(value, (list, tuple)) and any(isinstance(v, bool) for v in value):
            out.append(f"{path}: must be numbers, got {short_repr(value)} (YAML reads true/false, "
                       "yes/no, on/off as booleans)")
        elif isinstance(value, Mapping):
            for sub in _dataclasses_in(hint):
                out += _booleans_for_numbers(sub, value, (*loc, name))
    return out


def dump(obj: Any) -> Any:
    """JSON-ready plain data of a dataclass tree (the inverse of :func:`validate`)."""
    return _adapter(type(obj)).dump_python(obj, mode="json")


def _hints(cls: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001  # pragma: no cover - forward refs that cannot resolve
        return {}


def _dataclasses_in(tp: Any) -> list[Any]:
    if dataclasses.is_dataclass(tp):
        return [tp]
    out = []
    for arg in typing.get_args(tp):
        out.extend(_dataclasses_in(arg))
    return out


def _fields_at(root: type, loc: Sequence[Any]) -> list[str]:
    """Field names of the dataclass that holds the key at ``loc`` (for close matches)."""
    classes: list[Any] = [root]
    for part in loc[:-1]:
        nxt: list[Any] = []
        for cls in classes:
            hint = _hints(cls).get(str(part)) if isinstance(part, str) else None
            if hint is None and not isinstance(part, str):
                nxt.append(cls)  # list index: stay on the element type
                continue
            if hint is not None:
                nxt.extend(_dataclasses_in(hint))
        classes = nxt
        if not nxt:
            return []
    names: list[str] = []
    for cls in classes:
        names += [f.name for f in dataclasses.fields(cls) if f.name not in names]
    return names


def _fmt_loc(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _clean_loc(loc: Sequence[Any]) -> list[Any]:
    # pydantic inserts union member tags ("BandDecl", "tuple[...]", "function-after[...]")
    keep = []
    for part in loc:
        if isinstance(part, str) and (part[:1].isupper() or "[" in part or part in (
                "str", "int", "float", "bool", "none", "dict")):
            continue
        keep.append(part)
    return keep


def _lines(err: Any, root: type) -> list[str]:
    lines: list[str] = []
    for e in err.errors():
        loc = _clean_loc(e["loc"])
        path = _fmt_loc(loc)
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigError) and cause.key:  # a dataclass's own check
            line = f"{path}.{cause}" if path else str(cause)
        elif e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            allowed = _fields_at(root, loc)
            close = difflib.get_close_matches(str(loc[-1]) if loc else "", allowed, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            line = (f"{path}: unknown key (value {short_repr(e.get('input'))}).{hint} Allowed "
                    f"keys here: {allowed}.")
        elif e["type"] == "literal_error":
            expected = (e.get("ctx") or {}).get("expected", "")
            options = [s.strip().strip("'") for s in str(expected).replace(" or ", ", ").split(",")]
            close = difflib.get_close_matches(str(e.get("input")), options, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            line = f"{path}: {short_repr(e['input'])} is not allowed; expected {expected}.{hint}"
        elif isinstance(cause, Exception):
            line = f"{path}: {cause}" if path else str(cause)
        else:
            shown = "" if e["type"] == "missing" else f" (got {short_repr(e.get('input'))})"
            line = f"{path}: {e['msg']}{shown}"
        if line not in lines:
            lines.append(line)
    return lines
