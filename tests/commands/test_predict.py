"""`manage.py predict ID DATA.csv -o OUT.csv` as users call it: the file it writes, and exit code 2 with one line
for every input it cannot predict (never a traceback, never a partial output file)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from search.models import Search
from tests.conftest import create_search, manage
from tests.services.test_predictions import IRIS, SPEC, committed_model_search, iris_csv, read_predictions, stored_model

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def search(django_db_setup: None, django_db_blocker: Any) -> Iterator[Search]:
    with committed_model_search(django_db_blocker) as found:
        yield found


def predict(*args: Any) -> str:
    out = io.StringIO()
    call_command("predict", *map(str, args), stdout=out)
    return out.getvalue()


def refused(*args: Any) -> str:
    with pytest.raises(CommandError) as caught:
        predict(*args)
    assert caught.value.returncode == 2
    return str(caught.value)


def test_predictions_are_written_to_the_output_file(search: Search, tmp_path: Path) -> None:
    src, dst = tmp_path / "iris.csv", tmp_path / "out.csv"
    src.write_bytes(iris_csv())
    assert predict(search.pk, src, "-o", dst) == f"150 predictions written to {dst}\n"
    header, predicted, proba = read_predictions(dst.read_text())
    model = stored_model(search)
    assert header == ["prediction", "proba_0", "proba_1", "proba_2"]
    assert np.array_equal(predicted, model.predict(IRIS.data))
    assert np.array_equal(proba, model.predict_proba(IRIS.data))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iris.csv", "out.csv"]  # no temporary file left


def test_a_missing_search_is_refused(tmp_path: Path) -> None:
    assert refused(999999, tmp_path / "x.csv", "-o", tmp_path / "out.csv") == "search 999999 does not exist"


def test_a_search_without_a_model_is_refused_with_the_reason(tmp_path: Path) -> None:
    bare = create_search({**SPEC, "refit": False})
    message = refused(bare.pk, tmp_path / "x.csv", "-o", tmp_path / "out.csv")
    assert message.startswith(f"search {bare.pk} was run with refit: false, so no model was fitted")


BAD_FILES = [
    (None, "missing.csv: cannot read the file: No such file or directory"),
    (b"", "bad.csv: the file is empty"),
    (b"sepal length (cm),sepal width (cm),target\n1,2,0\n", "bad.csv: the file has no column 'petal length (cm)'"),
    (
        iris_csv() + b"1,2,x3,4,5\n",
        "bad.csv: column 'petal length (cm)' is not numeric (line 152: 'x3'); features must be numbers",
    ),
    (iris_csv().splitlines()[0] + b"\n", "bad.csv: the file has a header but no data rows"),
]


@pytest.mark.parametrize(
    ("content", "message"), BAD_FILES, ids=["missing-file", "empty", "missing-column", "non-numeric", "no-rows"]
)
def test_a_file_it_cannot_predict_exits_2_and_writes_nothing(
    search: Search, tmp_path: Path, content: bytes | None, message: str
) -> None:
    src = tmp_path / ("missing.csv" if content is None else "bad.csv")
    if content is not None:
        src.write_bytes(content)
    dst = tmp_path / "out.csv"
    assert refused(search.pk, src, "-o", dst).startswith(f"{tmp_path}/{message}")
    assert not dst.exists()
    assert [p.name for p in tmp_path.iterdir()] == ([] if content is None else ["bad.csv"])


def test_an_output_it_cannot_write_exits_2(search: Search, tmp_path: Path) -> None:
    src = tmp_path / "iris.csv"
    src.write_bytes(iris_csv())
    dst = tmp_path / "no-such-dir" / "out.csv"
    assert "No such file or directory" in refused(search.pk, src, "-o", dst)


def test_from_the_shell_a_bad_file_is_one_line_and_exit_code_2(search: Search, tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    src.write_bytes(b"sepal length (cm),target\n1,0\n")
    done = manage("predict", str(search.pk), str(src), "-o", str(tmp_path / "out.csv"))
    assert done.returncode == 2 and done.stdout == ""
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith(f"CommandError: {src}: the file has no column 'sepal width (cm)'")


def test_an_output_that_is_a_directory_exits_2_and_leaves_no_temporary_file(search: Search, tmp_path: Path) -> None:
    src = tmp_path / "iris.csv"
    src.write_bytes(iris_csv())
    (tmp_path / "out").mkdir()
    assert refused(search.pk, src, "-o", tmp_path / "out").startswith(f"{tmp_path / 'out'}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iris.csv", "out"]
