"""The client's API session, offline (httpx MockTransport): the bearer header, JSON errors as FanoutError, retries
on 429 after Retry-After and on connections that cannot be made, never a second POST once it was sent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fanout_client import FanoutError, FanoutSpecError, _http


def session(handler: Any, **kwargs: Any) -> _http.Session:
    return _http.Session("http://fanout.test/", "tok", transport=httpx.MockTransport(handler), **kwargs)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr("fanout_client._http.time.sleep", slept.append)
    return slept


def test_requests_go_to_the_api_with_the_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    assert session(handler).get("/estimators", limit=5) == {"ok": True}
    assert str(seen[0].url) == "http://fanout.test/api/v1/estimators?limit=5"
    assert seen[0].headers["Authorization"] == "Bearer tok"
    assert _http.api_base("http://h:8000/api/v1/") == "http://h:8000/api/v1"


def test_an_error_answer_is_a_fanout_error_with_status_detail_and_field() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/searches"):
            return httpx.Response(
                400, json={"detail": "expected an integer of at least 2, got 1", "field": "cv.n_splits"}
            )
        if request.url.path.endswith("/html"):
            return httpx.Response(502, text="<html>Bad gateway</html>")
        return httpx.Response(404, json={"detail": "no search 9 among yours", "field": None})

    s = session(handler)
    with pytest.raises(FanoutSpecError, match=r"cv\.n_splits: expected an integer of at least 2") as spec_error:
        s.post("/searches", json={}, spec=True)
    assert isinstance(spec_error.value, ValueError) and spec_error.value.field == "cv.n_splits"
    with pytest.raises(FanoutError) as info:
        s.get("/searches/9")
    assert (info.value.status, info.value.detail, info.value.field) == (404, "no search 9 among yours", None)
    assert not isinstance(info.value, ValueError)
    with pytest.raises(FanoutError, match="Bad gateway") as info:
        s.get("/html")
    assert info.value.status == 502
    with pytest.raises(FanoutError) as info:  # a 400 elsewhere (cv_results not ready) is not a spec error
        s.post("/searches", json={})
    assert not isinstance(info.value, FanoutSpecError)


def test_a_429_is_retried_after_retry_after(sleeps: list[float]) -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(429), httpx.Response(200)])
    assert session(lambda request: next(answers), backoff=0.25).request("POST", "/datasets").status_code == 200
    assert sleeps == [3.0, 0.5]


def test_rate_limited_past_the_retries_is_an_error(sleeps: list[float]) -> None:
    with pytest.raises(FanoutError) as info:
        session(lambda request: httpx.Response(429, headers={"Retry-After": "1"}), retries=2).get("/searches")
    assert info.value.status == 429 and sleeps == [1.0, 1.0]


def test_a_connection_that_cannot_be_made_is_retried_with_backoff(sleeps: list[float]) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(201, json={"id": 1})

    assert session(handler, backoff=0.5).post("/searches", json={}) == {"id": 1}
    assert sleeps == [0.5, 1.0] and calls == ["POST"] * 3

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ConnectionError, match=r"cannot reach the Fanout server at http://fanout\.test/api/v1"):
        session(down, retries=1).get("/estimators")


def test_a_post_whose_answer_broke_off_is_not_sent_again(sleeps: list[float]) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ReadError("reset", request=request)

    with pytest.raises(httpx.ReadError):
        session(handler).post("/searches", json={})
    assert calls == ["POST"] and sleeps == []


def test_url_and_token_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANOUT_URL", "http://env:1")
    monkeypatch.setenv("FANOUT_TOKEN", "t")
    assert _http.resolve(None, None) == ("http://env:1", "t")
    assert _http.resolve("http://arg:2", "u") == ("http://arg:2", "u")
