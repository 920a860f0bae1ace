"""Checkpoints and atomic files: the one place vbmi writes training state and result files.

One policy for every trainer (critic ensembles, ``estimate_mi``, the dSprites encoder):

* **Atomic writes.** :func:`atomic_write` writes into a temporary file with a unique name in the target's
  directory and renames it over the target (``os.replace``), so a reader or a killed job never sees a
  partial file. The final file gets the mode an ordinary ``open(path, "w")`` would give it
  (``0o666 & ~umask``); ``tempfile.mkstemp`` alone would leave it at 0600.
* **Fingerprints.** :func:`fingerprint` hashes everything that determines a result: the configuration
  (any JSON-like mapping, dataclasses included), array contents (tensors, numpy arrays), data files (a
  :class:`pathlib.Path` value is hashed by size and content, never by name) and the code version
  (vbmi's version, the hash of its source files, torch's version).
* **One resume policy.** :func:`load` returns the saved state, or ``None`` (train from step 0) when there
  is no checkpoint, when it belongs to another fingerprint, or when it cannot be read (truncated,
  corrupt); the last two emit a :class:`CheckpointWarning` that names the file.
* **Removal after use.** A checkpoint is removed (:func:`remove`) only once the result that depends on
  it is safely on disk; :func:`removed_on_success` wraps "train, write the cube" so that a failure or a
  kill anywhere inside keeps the checkpoint for the rerun.

Typical use::

    from vbmi.train import checkpoint

    fp = checkpoint.fingerprint(config=cfg, data=pathlib.Path("dsprites.npz"))
    state = checkpoint.load(path, fp)          # None: start at step 0
    ...
    checkpoint.save(path, {"step": step, "model": model.state_dict(), ...}, fp)
    ...
    write_the_cube(); checkpoint.remove(path)  # or: with checkpoint.removed_on_success(path): ...

States hold tensors, numbers, strings, lists, tuples, dicts and ``None`` only: they are read back with
``torch.load(weights_only=True)`` (no pickled code runs).

This module imports torch only inside :func:`save` and :func:`load`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import pathlib
import tempfile
import warnings
from typing import Any, Callable, Iterator, Mapping

__all__ = [
    "CheckpointWarning",
    "atomic_write",
    "fingerprint",
    "code_version",
    "save",
    "load",
    "read",
    "remove",
    "removed_on_success",
    "FORMAT",
]

log = logging.getLogger(__name__)

FORMAT = 1  # layout of the saved dict: {"format", "fingerprint", "state"}


class CheckpointWarning(UserWarning):
    """A checkpoint was found but not used (other fingerprint, unreadable); the message names the file."""


# ---------------------------------------------------------------------------------------------------
# Atomic files
# ---------------------------------------------------------------------------------------------------
def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # portable fallback: read by setting, then restore at once
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write_fn: Callable[[pathlib.Path], Any]) -> pathlib.Path:
    """Create ``path`` atomically: ``write_fn(tmp)`` writes the content to the temporary path ``tmp``.

    ``tmp`` has a unique name in ``path``'s directory (created with its parents), so concurrent writers
    never share it and the final ``os.replace`` is a rename within one file system. The file ends with
    mode ``0o666 & ~umask``, as a plain ``open(path, "w")`` would create it. If ``write_fn`` raises (or
    the process is interrupted), the temporary file is removed and ``path`` is left as it was.
    Returns ``path`` as a :class:`pathlib.Path`.

    Example: ``atomic_write(p, lambda tmp: ds.to_netcdf(tmp))``.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = pathlib.Path(name)
    try:
        write_fn(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------------------------------------
# Fingerprints
# ---------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def code_version() -> str:
    """vbmi's version, a hash of every ``.py`` file of the installed vbmi package, and torch's version.

    Any edit of vbmi's source changes it, so a checkpoint written by other code is never resumed.
    """
    import importlib.metadata

    root = pathlib.Path(__file__).resolve().parents[1]  # src/vbmi
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "none"
    from vbmi import __version__

    return f"vbmi {__version__} src {h.hexdigest()[:16]} torch {torch_version}"


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _canonical(obj: Any, where: str) -> Any:
    """A JSON-able, deterministic stand-in for ``obj`` (arrays and files by content)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)  # nan / inf are not JSON
    if isinstance(obj, pathlib.PurePath):
        p = pathlib.Path(obj)
        if not p.is_file():
            raise FileNotFoundError(f"fingerprint: data file {p} ({where}) does not exist")
        st = p.stat()
        return {"file_size": st.st_size, "file_sha256": _file_digest(str(p.resolve()), st.st_size, st.st_mtime_ns)}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"dataclass": type(obj).__name__, **_canonical(dataclasses.asdict(obj), where)}
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v, f"{where}.{k}") for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    mod = type(obj).__module__
    if mod.startswith("numpy"):
        import numpy as np

        if isinstance(obj, np.generic):
            return _canonical(obj.item(), where)
        if isinstance(obj, np.ndarray):
            arr = np.ascontiguousarray(obj)
            return {"array": str(arr.dtype), "shape": list(arr.shape),
                    "sha256": hashlib.sha256(arr.tobytes()).hexdigest()}
    if mod.startswith("torch"):
        import torch

        if isinstance(obj, torch.Tensor):
            t = obj.detach().to("cpu").contiguous()
            raw = t.reshape(-1).view(torch.uint8) if t.numel() else t.reshape(-1).to(torch.uint8)
            return {"tensor": str(t.dtype), "shape": list(t.shape),
                    "sha256": hashlib.sha256(raw.numpy().tobytes()).hexdigest()}
        if isinstance(obj, (torch.dtype, torch.device)):
            return str(obj)
    raise TypeError(f"fingerprint: cannot hash {where} of type {type(obj).__name__}; pass plain values, "
                    f"arrays, tensors or pathlib.Path data files")


def fingerprint(*, include_code: bool = True, **things: Any) -> str:
    """A hex digest of everything that determines a result.

    Keyword values may be JSON-like (numbers, strings, ``None``, lists, tuples, mappings, dataclasses),
    numpy arrays and torch tensors (hashed by dtype, shape and content) or :class:`pathlib.Path` data
    files (hashed by size and content, not by name or location; cached per size and mtime). A plain
    ``str`` is a value, not a file. Other types raise ``TypeError`` naming the key, so nothing is hashed
    by its ``repr`` (which may hold a memory address). With ``include_code`` (default) the
    :func:`code_version` is part of the digest.

    Example: ``fingerprint(config=cfg.to_dict(), data=Path(npz), specs=[s.to_dict() for s in specs])``.
    """
    blob = {k: _canonical(v, k) for k, v in things.items()}
    if include_code:
        blob["__code__"] = code_version()
    return hashlib.sha256(json.dumps(blob, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------
# Save / load / remove
# ---------------------------------------------------------------------------------------------------
def save(path: str | os.PathLike, state: Mapping[str, Any], fingerprint: str) -> pathlib.Path:
    """Write ``state`` (tensors, numbers, strings, containers) to ``path`` atomically with ``fingerprint``.

    Tensors should be on any device; they are loaded back onto the CPU by :func:`load`.
    """
    import torch

    blob = {"format": FORMAT, "fingerprint": str(fingerprint), "state": dict(state)}
    return atomic_write(path, lambda tmp: torch.save(blob, tmp))


def load(path: str | os.PathLike | None, fingerprint: str) -> dict[str, Any] | None:
    """The state saved at ``path`` with this ``fingerprint``, or ``None`` to start from step 0.

    ``None`` without a word when ``path`` is ``None`` or does not exist. ``None`` with a
    :class:`CheckpointWarning` naming ``path`` (and a log record) when the file cannot be read
    (truncated, corrupt, not a checkpoint) or was written for another fingerprint (other config, data
    or code). The file is left in place; the next :func:`save` replaces it. Tensors come back on the CPU.
    """
    if path is None:
        return None
    path = pathlib.Path(path)
    if not path.exists():
        return None
    try:
        blob = read(path)
        if not isinstance(blob, dict) or blob.get("format") != FORMAT or "state" not in blob:
            raise ValueError(f"{path} is unreadable (not a vbmi checkpoint)")
    except ValueError as err:
        _warn(f"checkpoint {err}; ignoring it and training from step 0")
        return None
    if blob.get("fingerprint") != fingerprint:
        _warn(f"checkpoint {path} was written for another configuration, data or code version; ignoring it "
              f"and training from step 0")
        return None
    return blob["state"]


def read(path: str | os.PathLike) -> Any:
    """The object saved at ``path``, read with ``torch.load(weights_only=True)`` onto the CPU. A file that
    exists but cannot be read (truncated, corrupt, not a torch file) raises :class:`ValueError` naming it."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 (torch.load raises many types for a damaged file)
        raise ValueError(f"{path} is unreadable ({type(err).__name__}: {str(err)[:200]})") from err


def _warn(message: str) -> None:
    log.warning(message)
    warnings.warn(message, CheckpointWarning, stacklevel=3)


def remove(path: str | os.PathLike | None) -> None:
    """Delete the checkpoint at ``path`` (nothing if ``None`` or absent). Call it only after the result
    that depends on the checkpoint is written."""
    if path is not None:
        pathlib.Path(path).unlink(missing_ok=True)


@contextlib.contextmanager
def removed_on_success(path: str | os.PathLike | None) -> Iterator[None]:
    """Remove the checkpoint at ``path`` when the block completes; keep it if the block raises.

    ::

        with checkpoint.removed_on_success(ckpt):
            result = train_from_config(specs, cfg, checkpoint_path=ckpt, device=device)
            write_cube(to_dataset(result), out)   # the checkpoint goes only after this succeeded
    """
    yield
    remove(path)
