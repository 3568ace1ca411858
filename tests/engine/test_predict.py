import csv
import io

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from search.engine import predict
from search.engine.predict import PredictError


def _csv(columns: list[str], rows: np.ndarray) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows([repr(float(v)) for v in row] for row in rows)
    return out.getvalue()


def _run(model, features: list[str], text: str, **kwargs) -> tuple[int, list[list[str]]]:
    dst = io.StringIO()
    n = predict.predict_csv(model, features, io.StringIO(text), dst, **kwargs)
    return n, list(csv.reader(io.StringIO(dst.getvalue())))


@pytest.fixture(scope="module")
def iris():
    bunch = load_iris()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(bunch.data, bunch.target)
    return model, list(bunch.feature_names), bunch.data, bunch.target


def _shuffled_iris_csv(features: list[str], X: np.ndarray, y: np.ndarray) -> str:
    columns = ["target", *features]
    order = np.random.default_rng(0).permutation(len(columns))
    table = np.column_stack([y, X])[:, order]
    return _csv([columns[i] for i in order], table)


def test_iris_predictions_and_probabilities_round_trip(iris) -> None:
    model, features, X, y = iris
    text = _shuffled_iris_csv(features, X, y)
    n, lines = _run(model, features, text)
    assert n == len(X) == len(lines) - 1
    assert lines[0] == ["prediction", "proba_0", "proba_1", "proba_2"]
    assert [int(line[0]) for line in lines[1:]] == model.predict(X).tolist()
    proba = np.array([[float(c) for c in line[1:]] for line in lines[1:]])
    assert np.array_equal(proba, model.predict_proba(X))
    assert _run(model, features, text, chunk_rows=7) == (n, lines)


def test_rows_come_back_in_input_order(iris) -> None:
    model, features, X, y = iris
    order = np.random.default_rng(1).permutation(len(X))
    _, lines = _run(model, features, _shuffled_iris_csv(features, X[order], y[order]), chunk_rows=7)
    assert [int(line[0]) for line in lines[1:]] == model.predict(X[order]).tolist()


def test_regressor_predictions_round_trip_without_proba_columns() -> None:
    bunch = load_diabetes()
    features = list(bunch.feature_names)
    for model in (LinearRegression(), RandomForestRegressor(n_estimators=5, random_state=0)):
        model.fit(bunch.data, bunch.target)
        n, lines = _run(model, features, _csv([*features, "target"], np.column_stack([bunch.data, bunch.target])))
        assert lines[0] == ["prediction"] and n == len(bunch.data)
        assert np.array_equal([float(line[0]) for line in lines[1:]], model.predict(bunch.data))


def test_string_class_labels(iris) -> None:
    _, features, X, y = iris
    labels = np.array(["a", "b", "b"])[y]  # two classes
    model = LogisticRegression(max_iter=1000).fit(X, labels)
    _, lines = _run(model, features, _csv(features, X))
    assert lines[0] == ["prediction", "proba_a", "proba_b"]
    assert [line[0] for line in lines[1:]] == model.predict(X).tolist()
    assert np.array_equal([[float(c) for c in line[1:]] for line in lines[1:]], model.predict_proba(X))


def test_output_columns_without_a_usable_predict_proba(iris) -> None:
    _, _, X, y = iris
    assert predict.output_columns(make_pipeline(StandardScaler(), SVC()).fit(X, y)) == ["prediction"]
    assert predict.output_columns(LinearRegression().fit(X, y)) == ["prediction"]
    assert predict.output_columns(SVC().fit(X, y)) == ["prediction"]


def test_blank_lines_and_padded_header_cells(iris) -> None:
    model, features, X, _ = iris
    header = ",".join(f" {f} " for f in features)
    body = "\n\n".join(",".join(repr(float(v)) for v in row) for row in X[:3])
    n, lines = _run(model, features, f"\n{header}\n{body}\n\n")
    assert n == 3 and [int(line[0]) for line in lines[1:]] == model.predict(X[:3]).tolist()


TWO = ["a", "b"]


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("", "file", "the file is empty"),
        ("\n\n", "file", "the file is empty"),
        ("a,b\n", "file", "the file has a header but no data rows"),
        ("a,c\n1,2\n", "b", r"no column 'b'.*columns are 'a', 'c'"),
        ("c\n1\n", "a", r"no column 'a', 'b'"),
        ("1,2\n3,4\n", "a", "holds numbers, not column names"),
        ("a,b,a\n1,2,3\n", "a", "names column 'a' 2 times"),
        ("a,b\n1,2\n3,x\n", "b", r"column 'b' is not numeric \(line 3"),
        ("a,b\n1,\n", "b", "column 'b' has an empty"),
        ("a,b\n1,2\n3\n", "file", "line 3 has 1 fields, the header has 2"),
        ("a,b\n1,2\n3,4,5\n", "file", "line 3 has 3 fields"),
        ("a,b\n1,inf\n", "b", "missing or infinite value on line 2"),
        ("a,b\n1,2\n" + "9" * 200_000 + ",1\n", "file", r"not valid CSV \(line 3\)"),
    ],
)
def test_errors(text: str, field: str, message: str) -> None:
    model = LinearRegression().fit(np.eye(2), [0.0, 1.0])
    with pytest.raises(PredictError, match=message) as info:
        predict.predict_csv(model, TWO, io.StringIO(text), io.StringIO())
    assert info.value.field == field


def test_bytes_that_are_not_utf8() -> None:
    model = LinearRegression().fit(np.eye(2), [0.0, 1.0])
    src = io.TextIOWrapper(io.BytesIO(b"a,b\n1,2\n\xff\xfe,1\n"), encoding="utf-8")
    with pytest.raises(PredictError, match="not UTF-8") as info:
        predict.predict_csv(model, TWO, src, io.StringIO())
    assert info.value.field == "file"


def test_check_header_raises_what_predict_csv_would() -> None:
    predict.check_header("b, a ,target\r\n", TWO)
    with pytest.raises(PredictError, match="the file is empty") as info:
        predict.check_header("", TWO)
    assert info.value.field == "file"
    with pytest.raises(PredictError, match="no column 'b'") as info:
        predict.check_header("\ufeffa,target", TWO)
    assert info.value.field == "b"


def test_streams_in_chunks() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10_000, 2))
    model = LinearRegression().fit(X, X @ [1.0, -2.0])
    text = _csv(["x0", "x1"], X)
    dst = io.StringIO()
    assert predict.predict_csv(model, ["x0", "x1"], io.StringIO(text), dst, chunk_rows=10) == 10_000
    lines = dst.getvalue().splitlines()
    assert len(lines) == 10_001
    assert np.array_equal([float(v) for v in lines[1:]], model.predict(X))
