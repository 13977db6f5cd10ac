"""Talking to the judge: one chat completion with bounded retries, and the preflight check.

Every attempt is cut off after `timeout_s` (asyncio.wait_for around httpx, so a server that trickles
bytes cannot stretch it); timeouts, connection errors, 429 and 5xx are retried `retries` times with
exponential backoff; other 4xx are not (asking again will not help). The API key comes from
`JUDGE_API_KEY` and goes only into the Authorization header: never into messages, logs or errors.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from common.retry import GaveUp, Retryable, RetryPolicy, retry_call, retry_call_async
from rewards.judge.protocol import response_format
from rewards.judge.settings import API_KEY_ENV, JudgeSettings, api_key, settings_from

log = logging.getLogger(__name__)


class JudgeUnavailable(RuntimeError):
    """The judge cannot be used (unreachable, wrong model, refused key); the message is one line."""


class JudgeCallFailed(Exception):
    """One judge request gave no answer after its retries; the message says why (one line).
    `status`: the HTTP status of a refused request (4xx other than 429), else None."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def auth_headers() -> dict[str, str]:
    key = api_key()
    return {"Authorization": f"Bearer {key}"} if key else {}


def new_client(s: JudgeSettings) -> httpx.AsyncClient:
    # One client per reward call: TRL keeps one event loop, but evaluation and the score CLI use
    # asyncio.run per call, and an httpx pool cannot move between loops.
    limits = httpx.Limits(max_connections=s.max_concurrency, max_keepalive_connections=s.max_concurrency)
    return httpx.AsyncClient(
        base_url=s.base_url.rstrip("/"), timeout=httpx.Timeout(s.timeout_s), limits=limits, headers=auth_headers()
    )


def request_body(s: JudgeSettings, prompt: str, structured: bool = False) -> dict:
    """The chat request; `structured` adds the verdict schema as `response_format` (JSON-schema output)."""
    body = {
        "model": s.model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": s.temperature,
        "max_tokens": s.max_tokens,
    }
    if structured:
        body["response_format"] = response_format()
    return body


def policy(s: JudgeSettings) -> RetryPolicy:
    # Jitter: the batch's concurrent requests that failed together do not come back in lockstep.
    return RetryPolicy(attempts=s.retries + 1, backoff_s=s.backoff_s, max_backoff_s=s.max_backoff_s, jitter=True)


async def ask(client: httpx.AsyncClient, s: JudgeSettings, prompt: str, structured: bool = False) -> str:
    """The judge's answer text; raises JudgeCallFailed when there is none."""
    body = request_body(s, prompt, structured)

    async def attempt() -> httpx.Response:
        try:
            response = await asyncio.wait_for(client.post("/chat/completions", json=body), s.timeout_s)
        except (asyncio.TimeoutError, httpx.TimeoutException):
            raise Retryable(f"timed out after {s.timeout_s:g}s") from None
        except httpx.TransportError as err:
            raise Retryable(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise Retryable(f"HTTP {response.status_code}")
        return response

    try:
        response = await retry_call_async(attempt, policy(s))
    except GaveUp as err:
        raise JudgeCallFailed(str(err)) from None
    if response.status_code >= 400:
        raise JudgeCallFailed(f"HTTP {response.status_code}: {_one_line(response.text)}", response.status_code)
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise JudgeCallFailed(f"not an OpenAI chat completion: {_one_line(response.text)}") from None
    if not isinstance(content, str):
        raise JudgeCallFailed("the answer has no text content")
    return content


def preflight(judge) -> str | None:
    """GET {base_url}/models: the judge answers and serves `judge.model`.

    Raises JudgeUnavailable (one line) when not; with `judge.required: false` it returns the problem
    instead, for the caller to say once (work then goes on, unanswered judge calls scoring None)."""
    s = settings_from(judge)
    try:
        _check_models(s)
    except JudgeUnavailable as err:
        if s.required:
            raise
        return str(err)
    return None


def _check_models(s: JudgeSettings) -> None:
    url = f"{s.base_url.rstrip('/')}/models"
    hint = "start it (docs/judge.md), fix judge.base_url, or run without a judge (judge=none)"

    def attempt() -> httpx.Response:
        try:
            response = httpx.get(url, headers=auth_headers(), timeout=s.timeout_s)
        except httpx.TimeoutException:
            raise Retryable(f"no answer within {s.timeout_s:g}s") from None
        except httpx.TransportError as err:
            raise Retryable(_one_line(str(err)) or type(err).__name__) from None
        if response.status_code >= 500:
            raise Retryable(f"HTTP {response.status_code}")
        return response

    try:
        response = retry_call(attempt, RetryPolicy(s.retries + 1, s.backoff_s, s.max_backoff_s))
    except GaveUp as err:
        raise JudgeUnavailable(f"judge unreachable at {url}: {err.reason}; {hint}") from None
    if response.status_code in (401, 403):
        raise JudgeUnavailable(
            f"judge at {url} refused the request (HTTP {response.status_code}); set {API_KEY_ENV} to its API key"
        )
    if response.status_code >= 400:
        raise JudgeUnavailable(f"judge at {url} answered HTTP {response.status_code}; {hint}")
    try:
        served = [m["id"] for m in response.json()["data"]]
    except (ValueError, KeyError, TypeError):
        raise JudgeUnavailable(f"judge at {url} is not an OpenAI-compatible server (no model list)") from None
    if s.model not in served:
        raise JudgeUnavailable(
            f"judge at {url} does not serve judge.model={s.model!r}; "
            f"it serves {', '.join(map(repr, served)) or 'nothing'}"
        )
    log.info("judge: %s serves %s", s.base_url, s.model)


def _one_line(text: str, limit: int = 200) -> str:
    return " ".join(str(text).split())[:limit]
