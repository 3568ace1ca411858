"""X, y and groups → numpy arrays and the `.npz` file `POST /datasets` takes (read there without pickle)."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._errors import NotSendableError


@dataclass(frozen=True)
class Data:
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray | None = None
    feature_names: np.ndarray | None = None  # a DataFrame's column names, when all of them are strings
    object_labels: bool = False  # y was an object array (strings), sent as a numpy string array

    def npz(self) -> bytes:
        buf = io.BytesIO()
        if self.groups is None:
            np.savez(buf, X=self.X, y=self.y)
        else:
            np.savez(buf, X=self.X, y=self.y, groups=self.groups)
        return buf.getvalue()


def npz_name(payload: bytes) -> str:
    return f"fanout-{hashlib.sha256(payload).hexdigest()[:8]}.npz"


def feature_names(X: Any) -> np.ndarray | None:
    """The column names of a DataFrame as scikit-learn keeps them (`feature_names_in_`): only when every one
    is a string."""
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = list(columns)
    return np.asarray(names, dtype=object) if names and all(isinstance(n, str) for n in names) else None


def _labels(values: Any, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise NotSendableError(f"{what} must be 1-D (one value per row) to be sent to Fanout, got shape {arr.shape}")
    if arr.dtype == object:
        arr = arr.astype(str)
    if arr.dtype.kind not in "biufU":
        raise NotSendableError(f"{what} of dtype {arr.dtype} cannot be sent to Fanout: give numbers or strings")
    return arr


def as_data(X: Any, y: Any, groups: Any = None) -> Data:
    """Numeric 2-D X, 1-D y of numbers or strings (object labels become strings) and optional groups."""
    import scipy.sparse
    from sklearn.utils import check_consistent_length

    if y is None:
        raise NotSendableError("y is required: Fanout searches classifiers and regressors")
    if scipy.sparse.issparse(X):
        raise NotSendableError("a sparse X cannot be sent to Fanout; give a dense array")
    names = feature_names(X)
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise NotSendableError(
            f"Expected a 2D array X, got shape {arr.shape}; reshape your data with array.reshape(-1, 1) for a "
            "single feature or array.reshape(1, -1) for a single sample"
        )
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise NotSendableError(
                f"X of dtype {arr.dtype} cannot be sent to Fanout: every column must be numeric (encode text and "
                "categories first)"
            ) from None
    object_labels = np.asarray(y).dtype == object
    labels = _labels(y, "y")
    group_arr = None if groups is None else _labels(groups, "groups")
    check_consistent_length(arr, labels, *([] if group_arr is None else [group_arr]))
    return Data(X=arr, y=labels, groups=group_arr, feature_names=names, object_labels=object_labels)
