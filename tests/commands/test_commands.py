"""`runsearch` and `exportsearch` as users call them: exit codes, one-line errors, stored rows."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from project.cluster import ROOT
from search.models import Dataset, Search, Status
from tests.conftest import create_search, manage, queued_messages, run_inline

GOOD = {"name": "lr", "estimator": "LogisticRegression", "param_grid": {"C": [0.1, 1]}, "dataset": "iris", "cv": 3}


def write(tmp_path: Path, data: Any, name: str = "spec.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


BAD_SPECS = [
    ("{not json", "invalid JSON at line 1 column 2"),
    ([], "the list of specs is empty"),
    ({**GOOD, "colour": "red"}, "colour: unknown key"),
    ({**GOOD, "estimator": "LogisticRegresion"}, "estimator: unknown estimator 'LogisticRegresion'"),
    ({**GOOD, "param_grid": {"C": [-1]}}, "param_grid.C: The 'C' parameter of LogisticRegression must be"),
    ({**GOOD, "param_grid": {"C": 1}}, "param_grid: Parameter grid for parameter 'C' needs to be a list"),
    ({**GOOD, "dataset": {"csv": "missing.csv", "target": "y"}}, "dataset.csv: cannot read"),
    ({**GOOD, "cv": 60}, "cv.n_splits: 60 stratified folds need at least 60 rows of every class"),
    ({**GOOD, "scoring": "precision_weighted_typo"}, "scoring: unknown scorer"),
    ([GOOD, {**GOOD, "n_jobs": 0}], "spec.json[1]: n_jobs: expected a non-zero integer"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("spec", "message"), BAD_SPECS)
def test_bad_spec_exits_2_naming_the_field_and_stores_nothing(tmp_path: Path, spec: Any, message: str) -> None:
    path = write(tmp_path, spec)
    with pytest.raises(CommandError) as info:
        call_command("runsearch", str(path), "--no-wait")
    assert info.value.returncode == 2
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)
    assert Search.objects.count() == 0 and queued_messages() == 0


@pytest.mark.django_db
def test_csv_problems_are_reported_with_the_file_name(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    path = write(tmp_path, {**GOOD, "dataset": {"csv": "data.csv", "target": "label"}})
    with pytest.raises(CommandError, match=r"dataset.csv: data.csv: target column 'label' not in the header"):
        call_command("runsearch", str(path), "--no-wait")
    assert Dataset.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_cli_exit_status_and_message_without_traceback(tmp_path: Path) -> None:
    out = manage("runsearch", str(write(tmp_path, {**GOOD, "param_grid": {"penalty": ["l3"]}})), timeout=60)
    assert out.returncode == 2
    assert "param_grid.penalty: The 'penalty' parameter of LogisticRegression must be" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    missing = manage("runsearch", str(tmp_path / "nope.json"), timeout=60)
    assert missing.returncode == 2 and "nope.json: cannot read: No such file or directory" in missing.stderr


@pytest.mark.parametrize(("code", "status", "stderr"), [("None", 0, ""), ("3", 3, ""), ("'bad spec'", 1, "bad spec\n")])
def test_the_fast_exit_keeps_every_line_and_the_exit_status(code: str, status: int, stderr: str) -> None:
    """runsearch leaves without the interpreter's teardown (docs/performance.md): what it wrote, buffered
    into a pipe and not yet flushed, still arrives, and the status is what `sys.exit(code)` would give."""
    program = (
        "import sys; from search.management.commands.runsearch import _exit_now\n"
        "sys.stdout.write('summary line\\n' * 3 + 'last, unterminated'); sys.stderr.write('')\n"
        f"_exit_now({code})"
    )
    env = {"DJANGO_SETTINGS_MODULE": "project.settings", "DJANGO_SECRET_KEY": "test", "PATH": "/usr/bin:/bin"}
    prelude = "import django; django.setup()\n"
    out = subprocess.run(
        [sys.executable, "-c", prelude + program],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (out.returncode, out.stdout, out.stderr) == (status, "summary line\n" * 3 + "last, unterminated", stderr)


@pytest.mark.django_db(transaction=True)
def test_no_wait_enqueues_and_prints_the_ids(tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("runsearch", str(write(tmp_path, [GOOD, {**GOOD, "name": "b"}])), "--no-wait", stdout=out)
    ids = [int(line.split()[1]) for line in out.getvalue().splitlines() if line.startswith("search ")]
    assert len(ids) == 2
    assert list(Search.objects.filter(pk__in=ids).values_list("status", flat=True)) == [Status.QUEUED] * 2
    assert queued_messages() == 2  # one unit each, enqueued after commit


@pytest.mark.django_db(transaction=True)
def test_local_runs_without_a_cluster_and_summarises(tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("runsearch", str(write(tmp_path, GOOD)), "--local", stdout=out, stderr=io.StringIO())
    search = Search.objects.get()
    assert search.status == Status.DONE and queued_messages() == 0
    text = out.getvalue()
    assert f"search {search.pk}\n" in text
    assert f"search {search.pk} (lr): done in" in text and "6/6 fits (0 failed)" in text
    assert f"best score {search.best_score:.4f}" in text  # LogisticRegression.score
    assert json.dumps(search.best_params) in text


@pytest.mark.django_db
def test_export_json_and_csv_in_cv_results_layout(tmp_path: Path) -> None:
    search = run_inline(create_search({**GOOD, "scoring": ["accuracy", "f1_macro"]}))
    out = io.StringIO()
    call_command("exportsearch", search.pk, "--format", "json", stdout=out)
    payload = json.loads(out.getvalue())
    assert payload["search"]["id"] == search.pk and payload["search"]["units"][0]["processes_used"] >= 1
    results = payload["cv_results"]
    assert results["params"] == [{"C": 0.1}, {"C": 1}]
    target = tmp_path / "out.csv"
    call_command("exportsearch", search.pk, "--format", "csv", "-o", str(target))
    rows = list(csv.DictReader(target.open()))
    assert len(rows) == 2
    assert list(rows[0])[:2] == ["params", "param_C"]
    for key in ["split0_test_accuracy", "mean_test_f1_macro", "std_test_accuracy", "rank_test_f1_macro",
                "mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time"]:  # fmt: skip
        assert key in rows[0]
    assert float(rows[1]["mean_test_accuracy"]) == results["mean_test_accuracy"][1]
    assert json.loads(rows[0]["params"]) == {"C": 0.1}


@pytest.mark.django_db
def test_export_refuses_unknown_and_unfinished_searches() -> None:
    with pytest.raises(CommandError, match="search 999 does not exist") as info:
        call_command("exportsearch", 999)
    assert info.value.returncode == 2
    search = create_search(GOOD)
    with pytest.raises(CommandError, match="is queued with 0/6 fits stored"):
        call_command("exportsearch", search.pk)


@pytest.mark.django_db
def test_owner_option_puts_searches_on_that_users_pages(tmp_path: Path) -> None:
    from django.contrib.auth.models import User

    user = User.objects.create_user("ana", password="a-long-test-password")
    call_command("runsearch", str(write(tmp_path, GOOD)), "--no-wait", "--owner", "ana", stdout=io.StringIO())
    assert Search.objects.get().owner == user and Dataset.objects.get().owner == user
    with pytest.raises(CommandError, match="--owner: no user named 'bob'") as info:
        call_command("runsearch", str(write(tmp_path, GOOD)), "--no-wait", "--owner", "bob")
    assert info.value.returncode == 2


@pytest.mark.django_db(transaction=True)  # --local runs the units in a thread, on its own connection
def test_runsearch_takes_an_uploaded_data_set_by_id_with_its_owner(tmp_path: Path) -> None:
    import numpy as np
    from django.contrib.auth.models import User

    from search.services.datasets import dataset_upload_file

    owner = User.objects.create_user("alice")
    buffer = io.BytesIO()
    np.savez(buffer, X=np.arange(40.0).reshape(20, 2), y=np.array([0, 1] * 10), groups=np.arange(20) // 5)
    dataset, _ = dataset_upload_file(owner=owner, name="", content=buffer.getvalue(), filename="a.npz")
    spec = {**GOOD, "dataset": {"id": dataset.pk}, "cv": {"n_splits": 2, "groups": True}}
    path = write(tmp_path, spec)
    with pytest.raises(CommandError) as info:  # no owner: the id names nobody's data set
        call_command("runsearch", str(path), "--no-wait")
    assert info.value.returncode == 2 and "dataset.id: " in str(info.value) and "--owner USERNAME" in str(info.value)
    with pytest.raises(CommandError, match=r"--owner: no user named 'bob'"):
        call_command("runsearch", str(path), "--no-wait", "--owner", "bob")
    out = io.StringIO()
    call_command("runsearch", str(path), "--local", "--owner", "alice", stdout=out, stderr=io.StringIO())
    search = Search.objects.get()
    assert search.owner == owner and search.dataset == dataset and search.status == Status.DONE
    assert Dataset.objects.count() == 1 and "4/4 fits (0 failed)" in out.getvalue()


@pytest.mark.django_db(transaction=True)  # --local runs the units in a thread, on its own connection
def test_timings_prints_every_phase_of_the_run(tmp_path: Path) -> None:
    from search.management.commands.runsearch import PHASES

    err = io.StringIO()
    call_command("runsearch", str(write(tmp_path, GOOD)), "--local", "--timings", stdout=io.StringIO(), stderr=err)
    text = err.getvalue()
    assert all(f"  {name} " in text for name in PHASES), text
    timings = json.loads(text.strip().splitlines()[-1])["timings"]
    assert list(timings) == list(PHASES)
    assert all(timings[name] is not None for name in PHASES), timings  # every phase happened, the refit too
