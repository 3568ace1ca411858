"""Shared fixtures: build searches from spec dicts and run them through the real runner process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from project.cluster import ROOT, start_qcluster, stop_qcluster
from search.models import Search
from search.selectors.cluster import live_clusters
from search.services.runners import runners_kept
from search.services.searches import plan_search, search_create
from search.services.units import unit_run


def queued_messages() -> int:
    """Task messages waiting in the broker (ORM or Redis), whichever this run is configured with."""
    from django_q.brokers import get_broker

    return int(get_broker().queue_size() or 0)


@pytest.fixture(scope="session", autouse=True)
def _one_runner_from_test_to_test() -> Iterator[None]:
    """The units this process runs itself keep their cleanly finished runner for the next test, as a worker
    keeps its spare from unit to unit: a runner holds nothing of a test (the engine reads its job and its data
    by path, never the database), and a cold one costs ~2 s of interpreter and scikit-learn imports in each of
    its processes. A runner that failed, was killed or was cancelled is never kept (`runner_release`); the tests
    of the runner's own life set up their own spare (tests/services/test_runners.py)."""
    with runners_kept():
        yield


@pytest.fixture(autouse=True)
def _empty_redis_queue() -> Iterator[None]:
    """Redis outlives a test's database transaction: start every test with an empty queue."""
    if settings.REDIS_URL:
        from django_q.brokers import get_broker

        get_broker().purge_queue()
    yield


def create_search(spec: dict[str, Any], **kwargs: Any) -> Search:
    """Validate and store a search without enqueueing it."""
    return search_create(plan=plan_search(spec), enqueue=False, **kwargs)


def run_inline(search: Search) -> Search:
    """Run every unit of a search here (the fits run in a runner process, kept warm from unit to unit as a
    worker keeps it), including the units of later halving rounds and the refit, which appear as units end."""
    seen: set[int] = set()
    with runners_kept():  # one warm runner for the whole search (its refit too), ended at the end
        while todo := list(search.units.exclude(pk__in=seen).order_by("index")):
            for unit in todo:
                seen.add(unit.pk)
                unit_run(unit_id=unit.pk)
    search.refresh_from_db()
    return search


@pytest.fixture
def make_search() -> Any:
    return create_search


@pytest.fixture
def run_search() -> Any:
    return run_inline


def project_env(**extra: str) -> dict[str, str]:
    """Environment for a child `manage.py` process that must share this test run's database."""
    env = dict(os.environ)
    db = settings.DATABASES["default"]
    env.update(DJANGO_SETTINGS_MODULE="project.settings", FANOUT_CLUSTER_NAME=settings.Q_CLUSTER["name"])
    if "postgresql" in db["ENGINE"]:  # the test database pytest-django created, not the configured one
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        env["DATABASE_URL"] = f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    else:
        env["FANOUT_SQLITE_PATH"] = str(db["NAME"])
    env.update(extra)
    return env


def manage(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=project_env(**env), capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def wait_for_no_cluster(timeout: float = 15) -> None:
    """Until no qcluster reports to the broker, or `timeout` s: then the test goes on, and its own assertions
    show what the extra cluster changed."""
    deadline = time.monotonic() + timeout
    while live_clusters() and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.fixture
def qcluster_env() -> dict[str, str]:
    """Extra environment for the `qcluster` fixture; override it in a test module to change settings."""
    return {}


@pytest.fixture
def qcluster(tmp_path: Path, qcluster_env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A real `manage.py qcluster` on this test run's database, stopped with its whole process group. It
    starts once no earlier test's cluster reports to the broker any more: a stopped cluster's status entry
    outlives it by up to 3 s (django-q2's `set_stat(..., 3)`), and until it expires `live_clusters()` counts
    it as a machine, so a search created meanwhile is split for two."""
    wait_for_no_cluster()
    proc = start_qcluster(project_env(**qcluster_env), tmp_path / "qcluster.log")
    try:
        yield proc
    finally:
        stop_qcluster(proc)


# Who may do what: the owner of the rows under test, another user, and anonymous (`login_client(None)`).
PASSWORD = "a-long-test-password"


@pytest.fixture
def owner(db: None) -> User:
    return User.objects.create_user("owner", password=PASSWORD)


@pytest.fixture
def other(db: None) -> User:
    return User.objects.create_user("other", password=PASSWORD)


def login_client(user: User | None, **kwargs: Any) -> Client:
    """A test client logged in as `user` (anonymous for None)."""
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def client_for() -> Any:
    return login_client


@pytest.fixture
def web(owner: User) -> Client:
    """The owner's logged-in client."""
    return login_client(owner)
