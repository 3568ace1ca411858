"""The fitted model as a file: written with skops (or joblib), read back without running pickle
(docs/traps.md, model files that run code).

A skops file is a zip of JSON plus arrays; loading it builds objects from named types, and refuses any
type not on a trusted list. `load` trusts what skops already trusts plus the classes scikit-learn defines (a
fitted tree, a KD-tree, a distance metric, an optimiser), and refuses everything else, functions included,
with an `ArtifactError`: a crafted file naming `numpy.memmap` would otherwise create files on load.
"""

from __future__ import annotations

import hashlib
import importlib
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
from sklearn.base import BaseEstimator

TRUSTED_PREFIXES = ("sklearn.",)
# Types outside scikit-learn that skops does not trust by default but that hold no code: a dtype is rebuilt from
# its name (SimpleImputer keeps the dtype it was fitted on).
SAFE_TYPES = frozenset({"numpy.dtype"})
_PACKAGES = ("scikit-learn", "numpy", "scipy", "joblib", "skops")
_CHUNK = 1 << 20


def _skops() -> Any:
    """`skops.io`, imported on first use: importing it imports every scikit-learn estimator (about 1 s), which
    every runner and every web process would otherwise pay at start for the few that write or read a model."""
    import skops.io  # type: ignore[import-untyped]  # skops ships no type information

    return skops.io


class ArtifactError(ValueError):
    """A model file that cannot be loaded safely; the message says why."""


def dump(model: BaseEstimator, path: Path) -> int:
    """Write `model` to `path` in skops format; return the file's size in bytes."""
    _skops().dump(model, path)
    return path.stat().st_size


def dump_joblib(model: BaseEstimator, path: Path) -> int:
    """Write `model` to `path` with `joblib.dump`; return the file's size in bytes.

    The file is a pickle: loading it runs whatever code it names, so only load one you wrote yourself.
    `load` refuses it.
    """
    joblib.dump(model, path)
    return path.stat().st_size


def load(source: Path | bytes) -> BaseEstimator:
    """The estimator in a skops file (a path or its bytes), built without running pickle.

    Types outside skops' own trusted list are accepted only when they are classes defined in scikit-learn
    (`trustable`); any other name, a file that is not a skops file, or one that does not hold an estimator
    raises `ArtifactError`. An unreadable path raises `OSError`. Fanout loads only the files it wrote
    itself, whose SHA-256 is on the model's card.
    """
    # One read: the bytes that were checked are the bytes that are loaded, even if the file changes.
    data = source.read_bytes() if isinstance(source, Path) else source
    if not data:
        raise ArtifactError("not a skops model file: it is empty")
    try:
        untrusted = _skops().get_untrusted_types(data=data)
    except Exception as exc:  # noqa: BLE001 - zip, JSON and schema errors of every kind mean "not ours"
        raise ArtifactError(f"not a skops model file: {_reason(exc)}") from None
    refused = [name for name in untrusted if not trustable(name)]
    if refused:
        raise ArtifactError(
            f"the file holds types that are not scikit-learn classes, which are not loaded: {', '.join(refused)}"
        )
    try:
        model = _skops().loads(data, trusted=untrusted)
    except Exception as exc:  # noqa: BLE001 - a well-formed zip can still hold a broken tree
        raise ArtifactError(f"not a skops model file: {_reason(exc)}") from None
    if not isinstance(model, BaseEstimator):
        raise ArtifactError(f"the file holds a {type(model).__name__}, not a scikit-learn estimator")
    return model


def trustable(name: str) -> bool:
    """A dotted name of a class that scikit-learn defines (not a function, not another package's class), or one
    of SAFE_TYPES."""
    if name in SAFE_TYPES:
        return True
    module, _, attr = name.rpartition(".")
    if not module.startswith(TRUSTED_PREFIXES) or not attr:
        return False
    try:
        found = getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return False
    return isinstance(found, type) and str(getattr(found, "__module__", "")).startswith(TRUSTED_PREFIXES)


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def versions() -> dict[str, str]:
    """The versions a model file depends on (a model loads reliably only under the versions it was fitted
    with)."""
    return {"python": platform.python_version()} | {name: metadata.version(name) for name in _PACKAGES}


def sha256_file(path: Path) -> str:
    """The file's SHA-256 as hex, read in chunks (model files can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
