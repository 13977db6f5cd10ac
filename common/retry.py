"""One bounded retry loop for every outside service (judge, vLLM, the serving server).

    policy = RetryPolicy(attempts=3, backoff_s=0.5, deadline_s=30)
    counter = RetryCounter()
    def attempt():
        response = client.post(url)
        if response.status_code >= 500:
            raise Retryable(f"HTTP {response.status_code}")   # worth asking again
        return response                                       # anything else is the caller's to judge
    try:
        response = retry_call(attempt, policy, counter=counter)
    except GaveUp as err:                                     # err.reason, err.attempts
        ...

What retries is what the attempt raises as `Retryable` (or any type in `policy.retry_on`); every other
exception leaves at once. Bounds: `attempts` (first try included) and `deadline_s` (the whole call,
sleeps included: no sleep is started that would end past it); either may be None, not both. Delays
grow from `backoff_s` by `multiplier` up to `max_backoff_s`; with `jitter` each is drawn from
[0.5, 1] x that, so clients that failed together do not come back in lockstep. `counter` adds up
calls, attempts, retries and failures for the caller's metrics. `sleep` and `clock` are parameters so
tests and async callers pass their own.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class Retryable(Exception):
    """Raised by an attempt whose failure is worth another try; the message says why (one line)."""


class GaveUp(Exception):
    """Every attempt failed, or the deadline came first. `reason`: the last failure; `attempts`: tries made."""

    def __init__(self, reason: str, attempts: int, deadline_hit: bool = False):
        self.reason, self.attempts, self.deadline_hit = reason, attempts, deadline_hit
        tries = f"{attempts} attempt" + ("s" if attempts != 1 else "")
        super().__init__(f"{reason} ({tries}{', deadline reached' if deadline_hit else ''})")


@dataclass
class RetryCounter:
    calls: int = 0
    attempts: int = 0
    retries: int = 0
    failures: int = 0  # calls that raised (gave up, or a failure not worth retrying)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int | None = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    multiplier: float = 2.0
    jitter: bool = False
    deadline_s: float | None = None
    retry_on: tuple[type[BaseException], ...] = (Retryable,)

    def __post_init__(self):
        if self.attempts is None and self.deadline_s is None:
            raise ValueError("RetryPolicy: give attempts or deadline_s (an unbounded retry loop is a hang)")
        if self.attempts is not None and self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts: must be >= 1, got {self.attempts}")
        if self.backoff_s < 0 or self.max_backoff_s < 0 or self.multiplier < 1:
            raise ValueError("RetryPolicy: backoff_s, max_backoff_s must be >= 0 and multiplier >= 1")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 = the first retry)."""
        base = min(self.max_backoff_s, self.backoff_s * self.multiplier ** (retry - 1))
        return base * random.uniform(0.5, 1.0) if self.jitter else base


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split())
    if isinstance(err, Retryable):
        return text or "retryable failure"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class _Loop:
    """The bookkeeping both the sync and the async loop share."""

    def __init__(self, policy: RetryPolicy, counter: RetryCounter | None, on_retry, clock):
        self.policy, self.counter, self.on_retry, self.clock = policy, counter or RetryCounter(), on_retry, clock
        self.started = clock()
        self.attempt = 0
        self.delay = 0.0  # seconds before the next try, set by a retryable failure
        self.counter.calls += 1

    def begin(self) -> None:
        self.attempt += 1
        self.counter.attempts += 1

    def failed(self, err: BaseException) -> float:
        """After a retryable failure: the delay before the next try, or raises GaveUp."""
        reason = _reason(err)
        p = self.policy
        if p.attempts is not None and self.attempt >= p.attempts:
            self.counter.failures += 1
            raise GaveUp(reason, self.attempt) from err
        delay = p.delay(self.attempt)
        if p.deadline_s is not None and self.clock() - self.started + delay >= p.deadline_s:
            self.counter.failures += 1
            raise GaveUp(reason, self.attempt, deadline_hit=True) from err
        self.counter.retries += 1
        if self.on_retry is not None:
            self.on_retry(self.attempt, reason, delay)
        return delay

    def fatal(self) -> None:
        self.counter.failures += 1

    @contextmanager
    def attempting(self) -> Iterator[None]:
        """One try. A retryable failure is swallowed and sets `delay` (or raises GaveUp at the bounds); any
        other exception is counted and goes on. The with-block is the same code for sync and async calls."""
        self.begin()
        try:
            yield
        except self.policy.retry_on as err:
            self.delay = self.failed(err)
        except BaseException:
            self.fatal()
            raise


def retry_call(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    counter: RetryCounter | None = None,
    on_retry: Callable[[int, str, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """attempt() until it returns, within the policy's bounds. on_retry(attempt_no, reason, delay_s)."""
    loop = _Loop(policy, counter, on_retry, clock)
    while True:
        with loop.attempting():
            return attempt()
        sleep(loop.delay)


async def retry_call_async(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    counter: RetryCounter | None = None,
    on_retry: Callable[[int, str, float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """The same loop for a coroutine function; waits with asyncio.sleep."""
    loop = _Loop(policy, counter, on_retry, clock)
    while True:
        with loop.attempting():
            return await attempt()
        await asyncio.sleep(loop.delay)
