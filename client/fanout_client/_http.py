"""The API session: base URL, bearer token, JSON errors as `FanoutError`, retries.

A 429 is retried after the server's `Retry-After`; a connection that cannot be made is retried with
exponential backoff (any request: nothing reached the server), and a GET also when the connection breaks
mid-answer. Other errors are raised at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import httpx

from ._errors import FanoutError, FanoutSpecError

API_PREFIX = "/api/v1"
MAX_RETRY_AFTER = 120.0  # seconds; a longer Retry-After is waited this long, then asked again


def resolve(url: str | None, token: str | None) -> tuple[str, str]:
    """`url` and `token`, or the `FANOUT_URL` and `FANOUT_TOKEN` environment variables."""
    url = url or os.environ.get("FANOUT_URL") or None
    token = token or os.environ.get("FANOUT_TOKEN") or None
    if not url:
        raise ValueError(
            "No Fanout server given: pass url='http://host:8000' or set the FANOUT_URL environment variable"
        )
    if not token:
        raise ValueError(
            "No Fanout API token given: pass token=... or set the FANOUT_TOKEN environment variable "
            "(make one on the page Account → API tokens, or with `manage.py createtoken USERNAME`)"
        )
    return url, token


def api_base(url: str) -> str:
    """`http://host:8000` or `http://host:8000/api/v1/` → `http://host:8000/api/v1`."""
    url = url.rstrip("/")
    return url if url.endswith(API_PREFIX) else url + API_PREFIX


def _error(response: httpx.Response, spec: bool) -> FanoutError:
    detail: str = response.reason_phrase or "error"
    field: str | None = None
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        detail = text[:300] if text else detail
    else:
        if isinstance(body, dict):
            detail = str(body.get("detail", body))
            field = body.get("field") if isinstance(body.get("field"), str) else None
        else:
            detail = str(body)
    cls = FanoutSpecError if spec and response.status_code == 400 else FanoutError
    return cls(response.status_code, detail, field)


class Session:
    """One server, one token. `request` raises `FanoutError` for an error answer (`FanoutSpecError`, a
    ValueError, for a 400 when `spec=True`)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        retries: int = 5,
        backoff: float = 0.5,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        from . import __version__

        self.base = api_base(url)
        self.retries = retries
        self.backoff = backoff
        self.client = httpx.Client(
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"fanout-client/{__version__}"},
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        spec: bool = False,
    ) -> httpx.Response:
        url = self.base + path
        attempt = 0
        while True:
            try:
                response = self.client.request(method, url, json=json, params=params, files=files, data=data)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                self._retry_or_raise(attempt, exc)
            except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout) as exc:
                if method != "GET":  # the server may have acted on it: never send it twice
                    raise
                self._retry_or_raise(attempt, exc)
            else:
                if response.status_code == 429 and attempt < self.retries:
                    time.sleep(self._retry_after(response, attempt))
                elif response.is_error:
                    raise _error(response, spec)
                else:
                    return response
            attempt += 1

    def _retry_or_raise(self, attempt: int, exc: httpx.TransportError) -> None:
        if attempt >= self.retries:
            raise ConnectionError(f"cannot reach the Fanout server at {self.base}: {exc}") from exc
        time.sleep(self.backoff * 2**attempt)

    def _retry_after(self, response: httpx.Response, attempt: int) -> float:
        try:
            seconds = float(response.headers.get("Retry-After", ""))
        except ValueError:
            seconds = self.backoff * 2**attempt
        return min(max(seconds, 0.0), MAX_RETRY_AFTER)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None).json()

    def get_bytes(self, path: str) -> bytes:
        return self.request("GET", path).content

    def post(self, path: str, **kwargs: Any) -> Any:
        response = self.request("POST", path, **kwargs)
        return response.json() if response.content else None
