"""`FanoutSearchCV` and `FanoutRandomizedSearchCV`: GridSearchCV and RandomizedSearchCV whose fits run on a
Fanout server.

They subclass scikit-learn's `BaseSearchCV` only for what a fitted search offers (`predict`, `score`,
`classes_`, … delegated to `best_estimator_` exactly as GridSearchCV delegates them); `fit` is Fanout's own:
it turns the estimator into a spec (before anything is uploaded), uploads X and y as an `.npz` data set,
creates the search, waits for it with a progress bar and rebuilds `cv_results_`, `best_*` and the refitted
`best_estimator_` from the server's answers.
"""

from __future__ import annotations

import numbers
import sys
import warnings
from typing import Any, Self

import numpy as np
from sklearn.base import clone
from sklearn.model_selection._search import BaseSearchCV

from ._attach import search_arguments
from ._data import as_data, npz_name
from ._errors import FanoutSpecError, NotSendableError
from ._http import Session, resolve
from ._model import as_users, load_skops
from ._outcome import check_outcome, warn_failures
from ._results import best_index, cv_results, reorder, user_params
from ._spec import (
    EstimatorSpec,
    check_registry,
    cv_spec,
    distributions_spec,
    estimator_spec,
    grid_spec,
    scoring_spec,
)
from ._state import FITTED, State, in_user_terms, items, page_url
from ._values import json_value
from ._wait import is_over, wait_for


class _FanoutSearch(BaseSearchCV):  # type: ignore[misc]  # scikit-learn ships no type information
    """What both searches share: fit, attach, refresh and cancel. Not for direct use."""

    estimator: Any
    scoring: Any
    refit: Any
    cv: Any
    return_train_score: bool
    error_score: Any
    url: str | None
    token: str | None
    name: str | None
    wait: bool
    search_id_: int
    search_url_: str

    # -- scikit-learn's hooks ---------------------------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "cv_results_")

    def _run_search(self, evaluate_candidates: Any) -> None:
        raise NotImplementedError("a Fanout search runs its candidates on the server; call fit")

    # -- subclass parts ---------------------------------------------------------------------------------
    def _candidates_spec(self, spec: EstimatorSpec) -> tuple[dict[str, Any], int | None]:
        raise NotImplementedError

    def _local_candidates(self, seed: int | None) -> list[dict[str, Any]] | None:
        raise NotImplementedError

    # -- fit ----------------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, groups: Any = None, **fit_params: Any) -> Self:
        """Run the search on the Fanout server (`url`, or the FANOUT_URL environment variable, with `token` or
        FANOUT_TOKEN). Every check that needs no server runs first, so what cannot be sent fails before
        anything is uploaded. With `wait=False` it returns once the search is created, with `search_id_` and
        `search_url_` set; `refresh()` (or `attach`) completes it. Ctrl+C while waiting leaves the search
        running on the server."""
        if fit_params:
            raise NotSendableError(
                f"fit parameters ({', '.join(sorted(fit_params))}) cannot be sent to Fanout: its fits take X and y "
                "only; set estimator parameters in the estimator or the grid instead"
            )
        spec, est_spec, seed, data = self._build_spec(X, y, groups)
        url, token = resolve(self.url, self.token)
        with Session(url, token) as session:
            check_registry(est_spec, items(session.get("/estimators")))
            payload = data.npz()
            files = {"file": (npz_name(payload), payload, "application/octet-stream")}
            dataset = session.post("/datasets", files=files, spec=True)
            spec["dataset"] = {"id": dataset["id"]}
            try:
                search = session.post("/searches", json=spec, spec=True)
            except FanoutSpecError as exc:
                raise in_user_terms(exc, est_spec) from None
            for attr in FITTED:
                self.__dict__.pop(attr, None)
            self._fanout_state = State(url, est_spec, seed, data.feature_names, data.object_labels)
            self.search_id_ = int(search["id"])
            self.search_url_ = page_url(url, search)
            if self.wait:
                self._wait_and_load(session, search)
        return self

    def _build_spec(self, X: Any, y: Any, groups: Any) -> tuple[dict[str, Any], EstimatorSpec, int | None, Any]:
        from sklearn.base import is_classifier

        if callable(self.refit):
            raise NotSendableError(
                "refit as a callable cannot be sent to Fanout: give True, False or the name of one of the metrics"
            )
        score = self.error_score
        if score != "raise" and (isinstance(score, bool) or not isinstance(score, numbers.Real)):
            raise NotSendableError(
                f"The 'error_score' parameter of {type(self).__name__} must be a str among {{'raise'}} or an "
                f"instance of 'numbers.Real'. Got {score!r} instead."
            )
        est_spec = estimator_spec(self.estimator)
        scoring = scoring_spec(self.scoring)
        _, multimetric = self._scorers()  # scikit-learn's own checks of scoring and refit
        candidates, seed = self._candidates_spec(est_spec)
        data = as_data(X, y, groups)
        cv = cv_spec(self.cv, data.X, data.y, data.groups, classifier=is_classifier(self.estimator))
        if multimetric:
            refit: bool | str = self.refit if isinstance(self.refit, str) else False
        else:
            refit = bool(self.refit)
        spec = {
            "name": self.name or self._default_name(),
            "estimator": est_spec.spec_estimator(),
            "params": est_spec.params,
            **candidates,
            "cv": cv,
            "scoring": scoring,
            "refit": refit,
            "return_train_score": bool(self.return_train_score),
        }
        return spec, est_spec, seed, data

    def _default_name(self) -> str:
        short = " ".join(repr(self.estimator).split())
        return f"{type(self).__name__}({short[:150] + '…' if len(short) > 150 else short})"

    def _scorers(self) -> tuple[Any, bool]:
        """`scorer_` as BaseSearchCV builds it (one scorer, or a dict of them), and whether it is multimetric."""
        from sklearn.metrics import check_scoring
        from sklearn.metrics._scorer import _check_multimetric_scoring

        if isinstance(self.scoring, (list, tuple)):
            scorers = _check_multimetric_scoring(self.estimator, self.scoring)
            self._check_refit_for_multimetric(scorers)
            return scorers, True
        return check_scoring(self.estimator, self.scoring), False

    # -- waiting and results --------------------------------------------------------------------------
    def _state(self) -> State:
        state: State | None = getattr(self, "_fanout_state", None)
        if state is None or not hasattr(self, "search_id_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"This {type(self).__name__} has no Fanout search yet: call fit, or attach(id)")
        return state

    def refresh(self, *, wait: bool = True) -> Self:
        """Load the results of the search `fit(wait=False)` created (or a Ctrl+C left running): wait for it
        with a progress bar, or with `wait=False` load them only if it is over."""
        state = self._state()
        url, token = resolve(state.url, self.token)
        with Session(url, token) as session:
            search = session.get(f"/searches/{self.search_id_}")
            if wait or is_over(search):
                self._wait_and_load(session, search)
        return self

    def cancel(self) -> Self:
        """Cancel the search on the server (its finished fits stay)."""
        state = self._state()
        url, token = resolve(state.url, self.token)
        with Session(url, token) as session:
            session.post(f"/searches/{self.search_id_}/cancel")
        return self

    def _wait_and_load(self, session: Session, search: dict[str, Any]) -> None:
        try:
            search = wait_for(session, self.search_id_, search)
        except KeyboardInterrupt:
            print(
                f"\nFanout search {self.search_id_} keeps running on the server ({self.search_url_}). Load it "
                f"later with search.refresh(), or {type(self).__name__}.attach({self.search_id_}) in a new kernel.",
                file=sys.stderr,
            )
            raise
        self._load(session, search)

    def _load(self, session: Session, search: dict[str, Any]) -> None:
        outcome = check_outcome(session, search, self.error_score, self.search_url_)
        state = self._state()
        sid = self.search_id_
        export = session.get(f"/searches/{sid}/cv_results")
        raw = export["cv_results"]
        spec = state.spec
        order, params = user_params(
            raw["params"], self._local_candidates(state.seed), spec.to_server, spec.to_user, json_value
        )
        warn_failures(search, outcome.failures, self.error_score)
        error_score = None if self.error_score == "raise" else float(self.error_score)
        results = cv_results(reorder(raw, order), params, error_score)
        scorers, multimetric = self._scorers()
        refit_metric = self.refit if multimetric else "score"
        if self.refit or not multimetric:
            server_best = search.get("best_index", export["search"].get("best_index"))
            on_server = order.index(server_best) if server_best is not None else None
            best = best_index(results, refit_metric, on_server)
            if self.refit and on_server is not None and best != on_server:
                raise ValueError(
                    f"with error_score={self.error_score!r} the best candidate is {params[best]}, whose fits failed; "
                    f"Fanout refitted the best of the others, {params[on_server]}. Use error_score=np.nan."
                )
            self.best_index_ = best
            self.best_score_ = results[f"mean_test_{refit_metric}"][best]
            self.best_params_ = results["params"][best]
        self.scorer_ = scorers
        self.multimetric_ = multimetric
        self.n_splits_ = int(search.get("n_splits") or export["search"]["n_splits"])
        self.cv_results_ = results
        if self.refit and outcome.no_model:
            warnings.warn(
                f"Fanout search {sid} has no model: every candidate's mean score is NaN, and the server refits "
                "nothing then (scikit-learn would refit the first candidate); best_estimator_ is not set",
                UserWarning,
                stacklevel=4,
            )
        elif self.refit:
            if refit_error := search.get("refit_error"):
                raise RuntimeError(
                    f"the refit of Fanout search {sid} failed: {refit_error}; cv_results_ and best_params_ are set, "
                    "best_estimator_ is not"
                )
            model = load_skops(session.get_bytes(f"/searches/{sid}/model.skops"), sid)
            self.best_estimator_ = as_users(model, spec, state.feature_names, state.object_labels)
            if hasattr(self, "best_params_"):  # the very values GridSearchCV sets (numpy scalars, tuples)
                self.best_estimator_.set_params(**clone(self.best_params_, safe=False))
            self.refit_time_ = float(search.get("refit_time") or 0.0)
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_

    # -- attach -------------------------------------------------------------------------------------------
    @classmethod
    def attach(
        cls, search_id: int, *, url: str | None = None, token: str | None = None, wait: bool = True
    ) -> FanoutSearchCV | FanoutRandomizedSearchCV:
        """The search object of a search already on the server (made by `fit` in a kernel that is gone, by
        `fit(wait=False)`, on the web pages or on the command line), rebuilt from its stored spec: a
        FanoutSearchCV for a grid search, a FanoutRandomizedSearchCV for a random one, whichever class this is
        called on. With `wait=True` a search still running is waited for; with `wait=False` its results are
        loaded only if it is over (`refresh()` loads them later). The step names of a pipeline are the
        server's (make_pipeline's) and a DataFrame's column names are not kept by the server."""
        resolved_url, resolved_token = resolve(url, token)
        with Session(resolved_url, resolved_token) as session:
            search = session.get(f"/searches/{int(search_id)}")
            stored = search.get("spec")
            if stored is None:
                if not is_over(search) and not wait:
                    raise ValueError(f"Fanout search {search_id} is not over yet; attach with wait=True, or later")
                search = wait_for(session, int(search_id), search)
                stored = session.get(f"/searches/{int(search_id)}/cv_results")["search"]["spec"]
            strategy, kwargs = search_arguments(stored, items(session.get("/estimators")))
            target = FanoutRandomizedSearchCV if strategy == "random" else FanoutSearchCV
            obj = target(**kwargs, url=url, token=token, wait=wait)
            seed = stored.get("random_state") if strategy == "random" else None
            obj._fanout_state = State(resolved_url, estimator_spec(obj.estimator), seed, None)
            obj.search_id_ = int(search["id"])
            obj.search_url_ = page_url(resolved_url, search)
            if wait or is_over(search):
                obj._wait_and_load(session, search)
        return obj


class FanoutSearchCV(_FanoutSearch):
    """`GridSearchCV` whose fits run on a Fanout server.

    Same parameters and fitted attributes as GridSearchCV (`cv_results_`, `best_index_`, `best_params_`,
    `best_score_`, `best_estimator_`, `refit_time_`, `n_splits_`, `multimetric_`, `scorer_`), plus
    `search_id_` and `search_url_` (the search's page). The estimator must be a scikit-learn estimator of the
    server's registry or a Pipeline of them; parameter values numbers, strings, booleans, None or lists;
    scoring None, a scorer name or a list of names. `error_score`: the server scores a failed fit NaN; a number
    replaces those NaN split scores here (means, stds and ranks computed again, as scikit-learn computes them),
    'raise' makes fit raise a ValueError with the fit's error once the search is over. `url` and `token`
    default to the FANOUT_URL and FANOUT_TOKEN environment variables, read at fit time; `name` labels the search
    on the server.
    """

    def __init__(
        self,
        estimator: Any,
        param_grid: Any,
        *,
        scoring: Any = None,
        refit: Any = True,
        cv: Any = None,
        return_train_score: bool = False,
        error_score: Any = np.nan,
        url: str | None = None,
        token: str | None = None,
        name: str | None = None,
        wait: bool = True,
    ) -> None:
        self.estimator = estimator
        self.param_grid = param_grid
        self.scoring = scoring
        self.refit = refit
        self.cv = cv
        self.return_train_score = return_train_score
        self.error_score = error_score
        self.url = url
        self.token = token
        self.name = name
        self.wait = wait

    def _candidates_spec(self, spec: EstimatorSpec) -> tuple[dict[str, Any], int | None]:
        return {"param_grid": grid_spec(self.param_grid, self.estimator, spec)}, None

    def _local_candidates(self, seed: int | None) -> list[dict[str, Any]] | None:
        from sklearn.model_selection import ParameterGrid

        return list(ParameterGrid(self.param_grid))


class FanoutRandomizedSearchCV(_FanoutSearch):
    """`RandomizedSearchCV` whose fits run on a Fanout server (see FanoutSearchCV for what can be sent).

    `param_distributions` holds lists and frozen `scipy.stats` distributions (such as
    `scipy.stats.loguniform(1e-3, 1e3)`), sent by name. The server draws the candidates with scikit-learn's
    own ParameterSampler and `random_state`, so an int gives RandomizedSearchCV's candidates. With
    `random_state=None` a seed is drawn here with numpy (`np.random.default_rng()`), and with a
    `np.random.RandomState` one is drawn from it; either way the search's spec on the server records it.
    """

    def __init__(
        self,
        estimator: Any,
        param_distributions: Any,
        *,
        n_iter: int = 10,
        random_state: Any = None,
        scoring: Any = None,
        refit: Any = True,
        cv: Any = None,
        return_train_score: bool = False,
        error_score: Any = np.nan,
        url: str | None = None,
        token: str | None = None,
        name: str | None = None,
        wait: bool = True,
    ) -> None:
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.n_iter = n_iter
        self.random_state = random_state
        self.scoring = scoring
        self.refit = refit
        self.cv = cv
        self.return_train_score = return_train_score
        self.error_score = error_score
        self.url = url
        self.token = token
        self.name = name
        self.wait = wait

    def _seed(self) -> int:
        rs = self.random_state
        if rs is None:
            return int(np.random.default_rng().integers(2**32))
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(np.iinfo(np.int32).max))
        if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool) and 0 <= rs < 2**32:
            return int(rs)
        raise NotSendableError(
            f"random_state={rs!r} cannot be sent to Fanout: give None, an int between 0 and 2**32 - 1 or a "
            "np.random.RandomState"
        )

    def _candidates_spec(self, spec: EstimatorSpec) -> tuple[dict[str, Any], int | None]:
        from sklearn.model_selection import ParameterSampler

        if isinstance(self.n_iter, bool) or not isinstance(self.n_iter, (int, np.integer)) or self.n_iter < 1:
            raise ValueError(
                f"The 'n_iter' parameter of {type(self).__name__} must be an int in the range [1, inf). "
                f"Got {self.n_iter!r} instead."
            )
        dists = distributions_spec(self.param_distributions, self.estimator, spec)
        seed = self._seed()
        list(ParameterSampler(self.param_distributions, self.n_iter, random_state=seed))  # its own warnings
        part = {"strategy": "random", "param_distributions": dists, "n_iter": int(self.n_iter), "random_state": seed}
        return part, seed

    def _local_candidates(self, seed: int | None) -> list[dict[str, Any]] | None:
        from sklearn.model_selection import ParameterSampler

        if seed is None:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "the total space of parameters is smaller than n_iter"
            return list(ParameterSampler(self.param_distributions, self.n_iter, random_state=seed))
