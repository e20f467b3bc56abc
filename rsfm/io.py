"""Atomic file writes, output-path guards and safetensors helpers, shared by training, saving,
prediction, evaluation and export.

Every file is written to a temporary name in the same directory and renamed over the target
(``os.replace`` is atomic on POSIX), so a process killed at any moment leaves either the previous
or the new file, never half of one; and a target that is a hard link (a run's
``model.safetensors`` shares its inode with a checkpoint's) is replaced, never written through.

:func:`check_output_path` is the one rule for what a command may replace: never a file it reads
(its inputs, through symlinks and hard links) and never an existing file of the model folder it
reads (weights, config, recipe, metrics, checkpoints), unless the command says the file is its
own earlier output.

A write that fails because the disk is full or the file size limit (``ulimit -f``) is reached
becomes a :class:`~rsfm.errors.ConfigError` naming the output (:func:`disk_full_error`), and
:func:`check_free_space` refuses, before writing, a file that cannot fit (``torch.export.save``
aborts the process on a short write instead of raising).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from rsfm.errors import ConfigError, RsfmError

__all__ = [
    "FileSet",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_named",
    "atomic_write_text",
    "check_free_space",
    "check_output_path",
    "disk_full_error",
    "disk_full_message",
    "disk_full_reason",
    "read_text",
    "same_file",
    "save_figure",
    "save_safetensors",
]


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")


def read_text(path: str | os.PathLike[str], what: str, *,
              error: type[RsfmError] = ConfigError, errors: str = "strict") -> str:
    """The text of a file rsfm reads (a recipe, an ArcGIS export's JSON and map.txt): UTF-8
    with or without a byte-order mark, or UTF-16 with one (what Windows Notepad saves as
    "Unicode"; a BOM cannot start UTF-8 text, so the two never mix up).

    Args:
        path: The file.
        what: What the file is, starting the messages (``"Recipe file"``).
        error: The error to raise (:class:`~rsfm.errors.DataError` for data files).
        errors: ``"replace"`` for a file whose stray bytes matter little (a legacy code page
            in the paths of ArcGIS's map.txt, which is only cross-checked).

    Raises:
        ConfigError: (or ``error``) The file cannot be read, is binary (a TIFF named as a
            recipe) or is not text in those encodings; names the file.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise error(f"{what} '{path}' cannot be read: {err.strerror or err}.") from None
    utf16 = data.startswith(_UTF16_BOMS)
    if b"\0" in data[:4096] and not utf16:
        kind = " (a TIFF image?)" if data[:4] in _TIFF_MAGIC else ""
        raise error(f"{what} '{path}' is a binary file{kind}, not text.")
    try:
        return data.decode("utf-16" if utf16 else "utf-8-sig", errors=errors)
    except UnicodeDecodeError as err:
        raise error(f"{what} '{path}' is not UTF-8 or UTF-16 text ({err.reason} at byte "
                    f"{err.start}); save it as UTF-8.") from None


def save_figure(fig: Any, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """``fig.savefig`` (matplotlib) through :func:`atomic_write`; the format is the suffix's."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, **kwargs))


def atomic_write(path: str | os.PathLike[str], writer: Callable[[str], None]) -> Path:
    """Call ``writer(tmp_path)`` then rename the temporary file to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        _publish_mode(tmp)  # mkstemp creates 0600; published files get normal modes
        os.replace(tmp, path)
    except BaseException as err:
        full = disk_full_error(err, path) if isinstance(err, Exception) else None
        if os.path.exists(tmp):
            os.unlink(tmp)
        if full is not None:
            raise full from None
        raise
    return path


def _publish_mode(path: str | os.PathLike[str]) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def atomic_write_named(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> Path:
    """Like :func:`atomic_write`, for writers that need the real file name: ``writer`` gets
    ``<tmp folder>/<name of path>`` (suffix-sensitive writers: matplotlib, ``torch.export``), and
    every file it creates there (sidecars such as ONNX external data or a Shapefile's
    ``.shx``/``.dbf``) is renamed into ``path``'s folder, ``path`` itself last.

    The temporary folder sits next to ``path`` (same file system, so the renames are atomic)
    and is removed whatever happens.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        tmp = tmpdir / path.name
        writer(tmp)
        made = sorted((p for p in tmpdir.iterdir() if p.is_file()), key=lambda p: p == tmp)
        if tmp not in made:
            raise OSError(f"writing '{path}' produced no file")
        for p in made:
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
            _publish_mode(p)
            os.replace(p, path.parent / p.name)
    except Exception as err:
        full = disk_full_error(err, path, probe=tmpdir)
        if full is not None:
            raise full from None
        raise
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return path


_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
# what libraries that wrap the OS error in their own (safetensors, GDAL/libtiff) say
_FULL_TEXTS = ("no space left on device", "file too large", "disk quota exceeded")
# the writers whose errors say so only in their text; not any error that quotes it (a Hub
# upload refused as "file too large" is an OSError without errno, and no full disk)
_TEXT_WRITERS = ("safetensors", "rasterio")
_PROBE_BYTES = 1 << 20


def _probe_full(folder: Path) -> str | None:
    """Why writing 1 MiB into ``folder`` fails for lack of space (an unnamed temporary file,
    gone when closed); None when it does not."""
    try:
        with tempfile.TemporaryFile(dir=folder) as fh:
            fh.write(b"\0" * _PROBE_BYTES)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        if err.errno in _FULL_ERRNOS:
            return err.strerror or os.strerror(err.errno or 0)
    return None


def disk_full_reason(err: BaseException) -> str | None:
    """What ``err`` says when it comes from a full disk or the file size limit; None otherwise.

    That is an ``OSError`` with errno ``ENOSPC``, ``EFBIG`` or ``EDQUOT``, or an error of a
    writer that wraps that OS error in its own text (safetensors' ``File too large``, GDAL's
    ``No space left on device``; torch raises a plain ``RuntimeError``/``OSError``). The text
    is trusted from those only: other libraries' errors (network, Hub) may quote such words.
    """
    if isinstance(err, OSError) and err.errno in _FULL_ERRNOS:
        return err.strerror or os.strerror(err.errno or 0)
    writer = (type(err) in (OSError, RuntimeError)
              or type(err).__module__.split(".")[0] in _TEXT_WRITERS)
    if writer and any(t in str(err).lower() for t in _FULL_TEXTS):
        return str(err).strip().splitlines()[0][:200]
    return None


def disk_full_message(where: str, reason: str, *,
                      fix: str = "write to another disk") -> str:
    """The one wording of a write that failed for lack of space: ``where`` is what could not
    be written (``"'out.tif'"``, ``"the run directory '...'"``), ``reason`` what the system
    said or what was missing, ``fix`` the way out besides freeing space."""
    return (f"Cannot write {where}: disk full / file size limit reached ({reason}). Free some "
            f"space (or raise the file size limit, ulimit -f), or {fix}.")


def disk_full_error(err: BaseException, path: str | os.PathLike[str], *,
                    probe: str | os.PathLike[str] | None = None) -> ConfigError | None:
    """The error to raise instead of ``err``, raised while writing ``path``, when the disk is full
    or the file size limit is reached; None when ``err`` is something else.

    ``err`` says so itself (:func:`disk_full_reason`), or, since some libraries only say that a
    write or a read back failed (GDAL's ``IReadBlock failed``), a 1 MiB test write into
    ``probe`` (default: ``path``'s folder) fails with one of those errors.
    """
    if isinstance(err, RsfmError):  # already says what is wrong (a nested write's own error)
        return None
    path = Path(path)
    reason = disk_full_reason(err)
    vague = isinstance(err, (OSError, RuntimeError, ValueError)) or (
        type(err).__module__.startswith("rasterio"))
    if reason is None and vague:
        folder = Path(probe) if probe is not None else path.parent
        reason = _probe_full(folder) if folder.is_dir() else None
    if reason is None:
        return None
    return ConfigError(disk_full_message(f"'{path}'", reason))


def _file_size_limit() -> int | None:
    """The soft RLIMIT_FSIZE in bytes (None: unlimited, or no such limit on this platform)."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return None
    return None if limit in (resource.RLIM_INFINITY, -1) else int(limit)


def check_free_space(path: str | os.PathLike[str], nbytes: int, what: str = "Output") -> None:
    """Fail unless a file of about ``nbytes`` fits at ``path``: the free space of its file
    system and the file size limit (``ulimit -f``, RLIMIT_FSIZE).

    Raises:
        ConfigError: Names ``path``, the size needed and the space or limit there is.
    """
    path = Path(path)
    need = f"about {nbytes / 1e6:.1f} MB"
    limit = _file_size_limit()
    if limit is not None and nbytes > limit:
        raise ConfigError(disk_full_message(
            f"{what.lower()} '{path}'", f"it needs {need}, the file size limit is {limit} bytes",
            fix="choose a smaller model"))
    folder = path.parent
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if nbytes > free:
        raise ConfigError(disk_full_message(
            f"{what.lower()} '{path}'", f"it needs {need}, '{folder}' has {free / 1e6:.1f} MB "
            "free", fix="choose an output on another disk"))


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether ``a`` and ``b`` are the same existing file (symlinks followed, hard links
    included); False when either does not exist."""
    try:
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return False


class FileSet:
    """Files by identity (device, inode): :meth:`find` recognises one through any path,
    symlink or hard link, in constant time (a prediction over a folder of 10,000 scenes checks
    each output against every input)."""

    def __init__(self, paths: Iterable[str | os.PathLike[str]] = ()) -> None:
        self._ids: dict[tuple[int, int], Path] = {}
        for p in paths:
            key = self._key(p)
            if key is not None:
                self._ids.setdefault(key, Path(p))

    @staticmethod
    def _key(path: str | os.PathLike[str]) -> tuple[int, int] | None:
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return None
        return st.st_dev, st.st_ino

    def find(self, path: str | os.PathLike[str]) -> Path | None:
        """The member that is the same file as ``path`` (None when there is none)."""
        key = self._key(path)
        return self._ids.get(key) if key is not None else None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def check_output_path(
    target: str | os.PathLike[str], *, inputs: Iterable[str | os.PathLike[str]] | FileSet = (),
    model_dir: str | os.PathLike[str] | None = None, what: str = "Output",
    replaceable: Callable[[Path], bool] | None = None, hint: str = "choose another output name",
) -> None:
    """Fail unless writing ``target`` leaves every file the command reads as it was.

    Args:
        target: The file about to be written.
        inputs: Files the command reads (scenes, labels, recipe, an exported model file), or
            a :class:`FileSet` of them.
        model_dir: The run directory or saved model folder the command reads its model from:
            none of its existing files (weights, ``config.json``, ``recipe.yaml``, metrics,
            ``checkpoints/``...) may be replaced.
        what: How the message names ``target`` (``Output``, ``--vectors``...).
        replaceable: Says whether an existing file in ``model_dir`` is this command's own
            earlier output (e.g. a GeoTIFF written by ``rsfm predict``), which may be replaced.
        hint: The fix the message suggests.

    Raises:
        ConfigError: ``target`` is one of ``inputs`` or an existing file of ``model_dir``.
    """
    target = Path(target)
    src = (inputs if isinstance(inputs, FileSet) else FileSet(inputs)).find(target)
    if src is not None:
        name = f"'{target}'" if os.path.abspath(target) == os.path.abspath(src) else (
            f"'{target}' (the same file as '{src}')")
        raise ConfigError(f"{what} {name} is an input of this command; {hint}.")
    if model_dir is None or not os.path.lexists(target):
        return
    root = os.path.realpath(model_dir)
    # the link itself (a symlink in the folder) and what it points to both count
    where = (os.path.join(os.path.realpath(target.parent), target.name), os.path.realpath(target))
    if not any(_inside(p, root) for p in where):
        return
    if (target.is_dir() and not target.is_symlink()) or (
            replaceable is not None and replaceable(target)):
        return
    raise ConfigError(
        f"{what} '{target}' is a file of the model folder '{model_dir}' this command reads "
        f"(weights, config, recipe, metrics and checkpoints are never overwritten); {hint}."
    )


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write text atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write JSON atomically (indented, keys in insertion order)."""
    return atomic_write_text(path, json.dumps(data, indent=2, default=_default) + "\n")


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def save_safetensors(state: Mapping[str, Any], path: str | os.PathLike[str],
                     metadata: Mapping[str, str] | None = None) -> Path:
    """Save a state dict as safetensors atomically (tensors made contiguous, shared storage
    cloned)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=dict(metadata or {})))
