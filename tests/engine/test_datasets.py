import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.engine import datasets


@pytest.mark.parametrize("name", list(datasets.BUILTIN))
def test_builtin_loaders(name: str) -> None:
    data = datasets.load_builtin(name)
    assert data.n_samples > 100 and data.n_features == len(data.feature_names)


def test_generators_are_deterministic_without_random_state() -> None:
    a = datasets.generate("make_classification", {"n_samples": 50})
    b = datasets.generate("make_classification", {"n_samples": 50})
    assert np.array_equal(a.X, b.X) and a.n_samples == 50


@pytest.mark.parametrize("name", list(datasets.GENERATORS))
def test_every_generator(name: str) -> None:
    assert datasets.generate(name, {"n_samples": 30}).n_samples == 30


def test_generator_rejects_unknown_and_invalid_options() -> None:
    with pytest.raises(datasets.DatasetError, match=r"unknown option.*n_sample"):
        datasets.normalise_generator_options("make_moons", {"n_sample": 3})
    with pytest.raises(datasets.DatasetError, match="n_samples"):
        datasets.generate("make_classification", {"n_samples": -5})


def test_csv_types() -> None:
    data = datasets.read_csv(b"a,b,label\n1,2.5,0\n3,4,1\n5,6,1\n", "label")
    assert data.X.tolist() == [[1, 2.5], [3, 4], [5, 6]]
    assert data.y.dtype == np.int64 and data.y.tolist() == [0, 1, 1]
    assert data.feature_names == ["a", "b"]
    text = datasets.read_csv(b"x,species\n1,cat\n2,dog\n", "species")
    assert text.y.tolist() == ["cat", "dog"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "header row"),
        (b"a,b\n", "header row"),
        (b"a,b\n1,2\n", "target column 'y' not in the header"),
        (b"a,y\n1\n", "line 2 has 1 fields"),
        (b"a,y\nfoo,1\n", "column 'a' is not numeric"),
        (b"a,y\n,1\n", "column 'a' has an empty"),
        (b"a,y\nnan,1\n", "missing or infinite"),
        (b"a,y\n\xff\xfe,1\n", "not UTF-8"),
        (b"y\n1\n2\n", "no feature columns"),
    ],
)
def test_csv_errors(content: bytes, message: str) -> None:
    with pytest.raises(datasets.DatasetError, match=message):
        datasets.read_csv(content, "y")


# --- NumPy .npz archives --------------------------------------------------------------------------


def npz(**arrays: Any) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def test_npz_keeps_float64_features_bit_for_bit_and_names_them() -> None:
    X = np.random.default_rng(0).normal(size=(6, 3))
    data = datasets.read_npz(npz(X=X, y=np.array([0, 1, 2, 0, 1, 2])))
    assert data.X.dtype == np.float64 and np.array_equal(data.X, X) and data.X.tobytes() == X.tobytes()
    assert data.feature_names == ["x0", "x1", "x2"] and data.target_name == "y"
    assert data.y.dtype == np.int64 and data.y.tolist() == [0, 1, 2, 0, 1, 2]
    assert data.groups is None and data.n_samples == 6 and data.n_features == 3


def test_npz_integer_and_bool_features_become_float64_as_a_csv_reads_them() -> None:
    ints = datasets.read_npz(npz(X=np.array([[1, 2], [3, 4]], dtype=np.int32), y=np.array([0, 1])))
    csv = datasets.read_csv(b"a,b,y\n1,2,0\n3,4,1\n", "y")
    assert ints.X.dtype == np.float64 and ints.X.tobytes() == csv.X.tobytes()
    flags = datasets.read_npz(npz(X=np.array([[True], [False]]), y=np.array([1.5, 2.5])))
    assert flags.X.tolist() == [[1.0], [0.0]] and flags.y.dtype == np.float64


def test_npz_string_targets_and_groups_keep_their_dtype() -> None:
    data = datasets.read_npz(
        npz(X=np.zeros((4, 2)), y=np.array(["cat", "dog", "cat", "dog"]), groups=np.array(["a", "a", "b", "c"]))
    )
    assert data.y.dtype.kind == "U" and data.y.tolist() == ["cat", "dog", "cat", "dog"]
    assert data.groups is not None and data.groups.tolist() == ["a", "a", "b", "c"]
    numeric = datasets.read_npz(npz(X=np.zeros((3, 1)), y=np.array([0, 1, 0]), groups=np.array([7, 7, 8])))
    assert numeric.groups is not None and numeric.groups.dtype == np.int64


def test_npz_file_reader(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    path.write_bytes(npz(X=np.ones((2, 2)), y=np.array([0, 1])))
    assert datasets.read_npz_file(path).n_samples == 2


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"X": np.zeros((3, 2)), "y": np.array(["a", None, "b"], dtype=object)}, "'y' holds Python objects"),
        ({"X": np.array([[1, None]], dtype=object), "y": np.zeros(1)}, "'X' holds Python objects"),
        ({"X": np.zeros((2, 2))}, "the archive has no array 'y'"),
        ({"y": np.zeros(2)}, "the archive has no array 'X'"),
        ({"X": np.zeros((3, 2)), "y": np.zeros(3), "weights": np.ones(3)}, "unknown array 'weights'"),
        ({"X": np.zeros((3, 2)), "y": np.zeros(2)}, "y has 2 values and X has 3 rows"),
        ({"X": np.zeros((3, 2)), "y": np.zeros(3), "groups": np.zeros(4)}, "groups has 4 values and X has 3 rows"),
        ({"X": np.zeros(3), "y": np.zeros(3)}, "X must be 2-D"),
        ({"X": np.zeros((0, 2)), "y": np.zeros(0)}, "X is empty"),
        ({"X": np.zeros((3, 0)), "y": np.zeros(3)}, "X is empty"),
        ({"X": np.array([[1.0, -np.inf]]), "y": np.zeros(1)}, "X has an infinite value at row 0, column 1"),
        ({"X": np.array([[np.inf]]), "y": np.zeros(1)}, "X has an infinite value"),
        ({"X": np.array([["a"]]), "y": np.zeros(1)}, "features must be numbers"),
        ({"X": np.zeros((1, 1), dtype=complex), "y": np.zeros(1)}, "features must be numbers"),
        ({"X": np.zeros((2, 1)), "y": np.array([1.0, np.nan])}, "y has a missing or infinite value at row 1"),
        ({"X": np.zeros((2, 1)), "y": np.zeros((2, 1))}, "y must be 1-D"),
        ({"X": np.zeros((2, 1)), "y": np.array([b"a", b"b"])}, "expected numbers or unicode strings"),
        ({"X": np.zeros((2, 1)), "y": np.zeros(2), "groups": np.zeros((2, 2))}, "groups must be 1-D"),
        ({"arr_0": np.zeros((2, 1))}, "unknown array 'arr_0'"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_npz_errors(arrays: dict[str, Any], message: str) -> None:
    with pytest.raises(datasets.DatasetError, match=re.escape(message)):
        datasets.read_npz(npz(**arrays))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not an .npz archive"),
        (b"a,b,y\n1,2,0\n", "not an .npz archive"),
        (b"PK\x03\x04broken", "cannot be read"),
    ],
)
def test_npz_that_is_not_an_archive(content: bytes, message: str) -> None:
    with pytest.raises(datasets.DatasetError, match=message):
        datasets.read_npz(content)


def test_a_single_npy_array_is_named() -> None:
    out = io.BytesIO()
    np.save(out, np.zeros(3))
    with pytest.raises(datasets.DatasetError, match=r"a single \.npy array"):
        datasets.read_npz(out.getvalue())


def test_npz_too_large_is_refused_from_its_headers_before_it_is_decompressed() -> None:
    out = io.BytesIO()
    np.savez_compressed(out, X=np.zeros((datasets.MAX_NPZ_VALUES // 10 + 1, 10), dtype=np.uint8), y=np.zeros(1))
    assert len(out.getvalue()) < 1_000_000  # 50 million bytes of zeros compress to a few hundred KB
    with pytest.raises(datasets.DatasetError, match="the limit is 50,000,000"):
        datasets.read_npz(out.getvalue())
