"""Talking to a marketing tool: one client per run, retries on 429, one-line failures.

Every request of a sync goes through :class:`ToolClient`, which counts them, waits as
long as the tool's ``Retry-After`` asks when it answers 429 (or 502/503/504), and
turns any other refusal into a :class:`SyncFailed` that says what the tool answered
and what to do, e.g. ``Mailchimp answered 401: API Key Invalid; check the API key of
destination 'mc'``.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from strata.actions.ssrf import guarded_sync_client
from strata.errors import StrataError

T = TypeVar("T")

#: Answers worth another try after a pause: rate limits and an overloaded gateway.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: The longest pause taken for one ``Retry-After``; a tool asking for more fails the run.
MAX_WAIT = 120.0
#: Tries again after a connection failed (timeout, reset, refused).
TRANSPORT_RETRIES = 2


class SyncFailed(StrataError):
    """A marketing tool refused a request or could not be reached.

    What it had confirmed before is recorded; the rest is sent again by the next run.
    """


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: httpx.Headers


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (a tool's documented batch limit)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ToolClient:
    """Requests to one tool's API for one run: base URL, auth headers, retries, errors.

    ``message(body)`` pulls the tool's own error text out of an error answer and
    ``hint(status)`` says what the user should do about that status.
    """

    def __init__(
        self,
        tool: str,
        base_url: str,
        headers: dict[str, str],
        *,
        message: Callable[[Any], str],
        hint: Callable[[int], str],
        allow: Iterable[str] = (),
        timeout: float = 30.0,
        retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.tool = tool
        self.base_url = base_url.rstrip("/")
        self.headers = headers
        self.message = message
        self.hint = hint
        self.retries = retries
        self.sleep = sleep
        #: Requests sent in this run, retries included.
        self.requests = 0
        # Private addresses only when allowed (STRATA_WEBHOOK_ALLOW); no redirects followed.
        self._http = guarded_sync_client(tuple(allow), timeout, purpose="syncs")

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Answer:
        """Send one request (again after a pause when asked to); a 2xx answer or SyncFailed."""
        url = self.base_url + path
        content = None if json_body is None else json.dumps(json_body).encode()
        for attempt in range(self.retries + 1):
            self.requests += 1
            try:
                response = self._http.request(
                    method, url, content=content, params=params, headers=self.headers
                )
            except httpx.HTTPError as exc:
                # A dropped connection is worth a second try; an unknown host is not worth five.
                if attempt < min(self.retries, TRANSPORT_RETRIES) and isinstance(
                    exc, httpx.TransportError
                ):
                    self.sleep(_backoff(attempt))
                    continue
                raise SyncFailed(
                    f"{self.tool} could not be reached ({_reason(exc)}); "
                    "check the destination's address and the network, then run the sync again"
                ) from None
            except StrataError as exc:  # the address guard refused the URL
                raise SyncFailed(f"{self.tool} may not be called at {url}: {exc}") from None
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                wait = _retry_after(response.headers.get("retry-after"), attempt)
                if wait <= MAX_WAIT:
                    self.sleep(wait)
                    continue
            return self._answer(response)
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns

    def _answer(self, response: httpx.Response) -> Answer:
        body = _json(response)
        if 200 <= response.status_code < 300:
            return Answer(response.status_code, body, response.headers)
        said = (self.message(body) if body is not None else "") or response.reason_phrase
        raise SyncFailed(
            f"{self.tool} answered {response.status_code}: {_one_line(said).rstrip('.')}; "
            f"{self.hint(response.status_code)}"
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ToolClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def title_and_detail(title: Any, detail: Any) -> str:
    """A tool's error title and detail as one phrase ("API Key Invalid: Your API key…")."""
    title, detail = str(title or "").strip(), str(detail or "").strip()
    if title and detail and detail != title:
        return f"{title.rstrip('.')}: {detail}"
    return title or detail


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(value: str | None, attempt: int) -> float:
    """Seconds to wait: ``Retry-After`` as seconds or an HTTP date, else a growing pause."""
    if not value:
        return _backoff(attempt)
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return _backoff(attempt)
    return max(0.0, when.timestamp() - time.time())


def _backoff(attempt: int) -> float:
    return min(30.0, 2.0**attempt)


def _reason(exc: httpx.HTTPError) -> str:
    return type(exc).__name__ if not str(exc) else _one_line(str(exc))


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
