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
