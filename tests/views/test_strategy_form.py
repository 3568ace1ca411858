"""The new-search form for random search and successive halving: the stored spec, the errors, duplicate."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from search.models import Candidate, Search
from tests.conftest import create_search, queued_messages

pytestmark = pytest.mark.django_db
FORM = {
    "name": "strategies", "estimator": "SVC", "preprocessing": "", "params": "", "param_grid": '{"C": [1, 10]}',
    "dataset_kind": "builtin", "builtin": "iris", "generator": "make_classification", "generator_options": "",
    "cv_splits": "3", "n_jobs": "-1",
}  # fmt: skip
DISTRIBUTIONS = '{"C": {"distribution": "loguniform", "args": [0.01, 100]}, "kernel": ["rbf", "linear"]}'


@pytest.fixture
def client() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("owner", password="a-long-test-password"))
    return client


def test_random_search_from_the_form(client: Client) -> None:
    data = {**FORM, "strategy": "random", "param_distributions": DISTRIBUTIONS, "n_iter": "6", "random_state": "5"}
    response = client.post(reverse("search-new"), data)
    assert response.status_code == 302
    search = Search.objects.get()
    assert search.strategy == "random" and search.n_candidates == 6 and search.n_fits == 18
    assert search.spec["param_distributions"] == [json.loads(DISTRIBUTIONS)]
    assert search.spec["random_state"] == 5 and "param_grid" not in search.spec
    assert all(0.01 <= c["C"] <= 100 for c in Candidate.objects.filter(search=search).values_list("params", flat=True))


def test_halving_from_the_form(client: Client) -> None:
    data = {**FORM, "strategy": "halving", "param_grid": '{"C": [0.1, 1, 10, 100]}', "halving_factor": "2",
            "halving_min_resources": "", "halving_max_resources": ""}  # fmt: skip
    assert client.post(reverse("search-new"), data).status_code == 302
    search = Search.objects.get()
    assert search.strategy == "halving"
    assert search.spec["halving"] == {"factor": 2, "resource": "n_samples", "min_resources": "exhaust",
                                      "max_resources": "auto", "aggressive_elimination": False}  # fmt: skip
    assert search.schedule["n_candidates"] == [4, 2, 1] and search.n_fits == 7 * 3
    assert Candidate.objects.filter(search=search).count() == 4  # later rounds are created when a round ends


def test_halving_over_sampled_candidates_from_the_form(client: Client) -> None:
    """The fourth choice: HalvingRandomSearchCV, with its own defaults (n_candidates and min_resources)."""
    data = {**FORM, "strategy": "halving_random", "param_distributions": DISTRIBUTIONS, "halving_factor": "3",
            "halving_n_candidates": "", "halving_min_resources": "", "halving_max_resources": ""}  # fmt: skip
    response = client.post(reverse("search-new"), data)
    assert response.status_code == 302, response.context["form"].errors
    search = Search.objects.get()
    assert search.strategy == "halving" and "param_grid" not in search.spec
    assert search.spec["halving"]["n_candidates"] == "exhaust" and search.spec["halving"]["min_resources"] == "smallest"
    first = 150 // (3 * 2 * 3)  # iris: max_resources (150 rows) // min_resources (2 × 3 folds × 3 classes)
    assert search.schedule["n_candidates"][0] == first == Candidate.objects.filter(search=search).count()
    form = client.get(reverse("search-new") + f"?from={search.pk}").context["form"]
    assert form.initial["strategy"] == "halving_random" and form.initial["halving_n_candidates"] == "exhaust"
    assert json.loads(form.initial["param_distributions"]) == json.loads(DISTRIBUTIONS)
    estimate = client.post(reverse("search-estimate"), {**data, "name": "again"}).json()
    assert estimate["ok"] and estimate["text"].startswith(f"{search.n_fits} fits"), estimate  # every round


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"strategy": "random", "param_distributions": ""}, "param_distributions", "needs parameter distributions"),
        ({"strategy": "random", "param_distributions": '{"C": {"distribution": "lognormal"}}'},
         "param_distributions", "is not a scipy.stats distribution"),
        ({"strategy": "random", "param_distributions": '{"C": {"distribution": "uniform", "args": [0, -1]}}'},
         "param_distributions", "uniform(0, -1)"),
        ({"strategy": "random", "param_distributions": '{"C": 5}'}, "param_distributions", "expected a list"),
        ({"strategy": "random", "param_distributions": '{"Cee": [1, 2]}'}, "param_distributions", "no parameter"),
        ({"strategy": "random", "param_distributions": '{"C": [-1, 2]}'}, "param_distributions", "must be a float"),
        ({"strategy": "random", "param_distributions": DISTRIBUTIONS, "n_iter": "0"}, "n_iter", "greater than"),
        ({"strategy": "halving", "halving_factor": "1"}, "halving_factor", "greater than 1"),
        ({"strategy": "halving", "halving_resource": "n_trees", "halving_max_resources": "100"},
         "halving_resource", "not a parameter of SVC"),
        ({"strategy": "halving", "halving_resource": "max_iter", "halving_max_resources": "auto"},
         "halving_max_resources", "'auto' only works"),
        ({"strategy": "halving", "halving_min_resources": "500"}, "halving_min_resources", "greater than max"),
        ({"strategy": "halving", "halving_min_resources": "many"}, "halving_min_resources", "expected a positive"),
        ({"strategy": "halving", "scoring": ["accuracy", "f1_macro"]}, "scoring", "one metric"),
        ({"strategy": "halving_random", "param_distributions": ""}, "param_distributions", "needs parameter distri"),
        ({"strategy": "halving_random", "param_distributions": DISTRIBUTIONS, "halving_n_candidates": "all"},
         "halving_n_candidates", "positive integer or 'exhaust'"),
        ({"strategy": "halving_random", "param_distributions": DISTRIBUTIONS, "halving_min_resources": "exhaust"},
         "halving_min_resources", "cannot both be 'exhaust'"),
        # "²" is a digit to str.isdigit() but not to int(): a 500 before
        ({"strategy": "halving", "halving_min_resources": "²"}, "halving_min_resources", "got '²'"),
        ({"strategy": "halving", "halving_max_resources": "²"}, "halving_max_resources", "got '²'"),
        ({"strategy": "halving_random", "param_distributions": DISTRIBUTIONS, "halving_n_candidates": "²"},
         "halving_n_candidates", "got '²'"),
        ({"strategy": "halving", "halving_factor": "1.0000000000000002"}, "halving_factor", "at least 1.1"),
        ({"strategy": "random", "n_iter": "100000",
          "param_distributions": '{"C": {"distribution": "studentized_range", "args": [3, 10]}}'},
         "param_distributions", "samples too slowly"),
    ],
)  # fmt: skip
def test_bad_strategy_input_gets_an_error_next_to_its_field(
    client: Client, changes: dict[str, Any], field: str, message: str
) -> None:
    response = client.post(reverse("search-new"), {**FORM, **changes})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field]), errors
    assert Search.objects.count() == 0 and queued_messages() == 0


def test_duplicate_and_edit_keeps_the_strategy(client: Client) -> None:
    user = User.objects.get()
    random = create_search({"estimator": "SVC", "dataset": "iris", "strategy": "random", "n_iter": 4,
                            "param_distributions": json.loads(DISTRIBUTIONS)}, owner=user)  # fmt: skip
    form = client.get(reverse("search-new") + f"?from={random.pk}").context["form"]
    assert form.initial["strategy"] == "random" and form.initial["n_iter"] == 4
    assert json.loads(form.initial["param_distributions"]) == json.loads(DISTRIBUTIONS)
    halving = create_search({"estimator": "SVC", "dataset": "iris", "strategy": "halving", "param_grid": {"C": [1, 2]},
                             "halving": {"factor": 2, "min_resources": 30}}, owner=user)  # fmt: skip
    form = client.get(reverse("search-new") + f"?from={halving.pk}").context["form"]
    assert form.initial["strategy"] == "halving" and form.initial["halving_min_resources"] == "30"
    assert form.initial["halving_factor"] == 2


@pytest.mark.parametrize("value", ["²", "¹²", "٣", "1.5", "-1", "abc", ""])
def test_a_duplicate_link_that_is_not_an_id_shows_the_empty_form(client: Client, value: str) -> None:
    """`?from=` takes ASCII digits only ("²" passed str.isdigit() and made int() raise: a 500)."""
    create_search({"estimator": "SVC", "dataset": "iris", "name": "source"}, owner=User.objects.get())
    response = client.get(reverse("search-new"), {"from": value})
    assert response.status_code == 200 and response.context["form"].initial == {}
