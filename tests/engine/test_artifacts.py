import hashlib
import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio  # type: ignore[import-untyped]
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from search.engine import artifacts

ROOT = Path(__file__).resolve().parents[2]


class Passthrough(TransformerMixin, BaseEstimator):  # type: ignore[misc]  # sklearn is untyped
    """An estimator from outside scikit-learn: its type must not be loaded from a file."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


@pytest.fixture(scope="module")
def classifier():
    X, y = load_iris(return_X_y=True)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y), X


@pytest.fixture(scope="module")
def regressor():
    X, y = load_diabetes(return_X_y=True)
    return RandomForestRegressor(n_estimators=5, random_state=0).fit(X, y), X


@pytest.mark.parametrize("as_bytes", [False, True])
def test_classifier_round_trip(classifier, tmp_path: Path, as_bytes: bool) -> None:
    model, X = classifier
    path = tmp_path / "model.skops"
    size = artifacts.dump(model, path)
    assert size == path.stat().st_size > 0
    loaded = artifacts.load(path.read_bytes() if as_bytes else path)
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert np.allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=0, atol=1e-12)


def test_regressor_round_trip(regressor, tmp_path: Path) -> None:
    model, X = regressor
    path = tmp_path / "forest.skops"
    assert artifacts.dump(model, path) == path.stat().st_size
    # A forest's trees are sklearn.tree._tree.Tree, outside skops' default trusted list: the prefix admits it.
    assert any(t.startswith("sklearn.tree") for t in sio.get_untrusted_types(file=path))
    assert np.array_equal(artifacts.load(path).predict(X), model.predict(X))


def test_joblib_file_is_refused(classifier, tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    assert artifacts.dump_joblib(classifier[0], path) == path.stat().st_size
    with pytest.raises(artifacts.ArtifactError, match="not a skops model file"):
        artifacts.load(path)


def _zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        os.urandom(256),
        b"",
        b"PK\x03\x04 not really a zip",
        _zip({"schema.json": "{}"}),
        _zip({"schema.json": "not json"}),
        _zip({"other.txt": "x"}),
    ],
    ids=["random", "empty", "zip-magic", "empty-schema", "bad-json", "no-schema"],
)
def test_files_that_are_not_skops_are_refused(data: bytes, tmp_path: Path) -> None:
    with pytest.raises(artifacts.ArtifactError, match="not a skops model file"):
        artifacts.load(data)
    path = tmp_path / "file"
    path.write_bytes(data)
    with pytest.raises(artifacts.ArtifactError, match="not a skops model file"):
        artifacts.load(path)


def test_types_outside_the_trusted_packages_are_refused(classifier, tmp_path: Path) -> None:
    X = classifier[1]
    model = make_pipeline(Passthrough(), LogisticRegression(max_iter=1000)).fit(X, load_iris().target)
    path = tmp_path / "custom.skops"
    sio.dump(model, path)
    with pytest.raises(artifacts.ArtifactError, match=r"tests\.engine\.test_artifacts\.Passthrough"):
        artifacts.load(path)


def test_a_file_without_an_estimator_is_refused() -> None:
    with pytest.raises(artifacts.ArtifactError, match="not a scikit-learn estimator"):
        artifacts.load(sio.dumps({"C": 1.0}))


def test_versions_and_sha256(tmp_path: Path) -> None:
    assert set(artifacts.versions()) == {"python", "scikit-learn", "numpy", "scipy", "joblib", "skops"}
    assert artifacts.versions()["python"] == ".".join(map(str, sys.version_info[:3]))
    path = tmp_path / "blob"
    path.write_bytes(b"x" * (3 << 20))  # three read chunks
    assert artifacts.sha256_file(path) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()


@pytest.mark.parametrize(
    ("name", "trusted"),
    [
        ("sklearn.tree._tree.Tree", True),  # a fitted tree's Cython class
        ("sklearn.linear_model._logistic.LogisticRegression", True),
        ("numpy.memmap", False),  # a crafted file calling it would create a file on load
        ("numpy.save", False),
        ("sklearn.utils.validation.check_array", False),  # a function, not a class
        ("sklearn.no_such_module.Thing", False),
        ("sklearnx.Thing", False),
        ("builtins.eval", False),
        ("numpy.dtype", True),  # SimpleImputer keeps the dtype it was fitted on
        ("numpy.ndarray", False),  # numpy's other classes stay out
    ],
)
def test_only_scikit_learn_classes_are_trusted(name: str, trusted: bool) -> None:
    assert artifacts.trustable(name) is trusted


def test_an_imputer_pipeline_round_trips(tmp_path: Path) -> None:
    """A SimpleImputer holds a numpy.dtype, which skops does not trust by default and Fanout does."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X, y = load_iris(return_X_y=True)
    X = X.copy()
    X[::7, 1] = np.nan
    model = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)).fit(X, y)
    path = tmp_path / "imputer.skops"
    artifacts.dump(model, path)
    assert np.array_equal(artifacts.load(path).predict(X), model.predict(X))
