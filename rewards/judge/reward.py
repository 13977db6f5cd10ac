"""`judge_coherence`: the async TRL reward that asks the judge about every completion of a batch.

One call, step by step:
1. each completion gets its context (last robot turn, child reply, main answer) and a cache key;
2. identical (context, completion) pairs are asked once (GRPO groups repeat themselves), verdicts
   already in the cache are not asked at all;
3. the rest go to the judge concurrently, at most `max_concurrency` at a time, each request bounded
   (see client.py) and the whole call bounded by `batch_timeout_s`;
4. answers -> intent score -> (score - 1) / 4; failures and unusable answers -> None, counted;
5. group rule: TRL sums rewards with None as 0, so a completion the judge skipped would lose against
   its group-mates; when any completion of a GRPO group (a block of `group_size` consecutive
   completions) has no score, the whole group gets None and the judge stays out of its advantages;
6. metrics `judge/*` go to TRL's `log_metric` (W&B) and to the logging module.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import Counter

from rewards.judge.cache import VerdictCache, cache_key
from rewards.judge.client import JudgeCallFailed, ask, new_client
from rewards.judge.context import contexts_for, render
from rewards.judge.protocol import PROTOCOL, parse_intent_score, reward_from_score
from rewards.judge.settings import JudgeSettings, load_template, settings_from
from rewards.text import completion_text

log = logging.getLogger(__name__)
UNUSABLE = "unusable answer"
# httpx logs every request at INFO: 64 lines per training step. Quieted unless someone set its level.
if logging.getLogger("httpx").level == logging.NOTSET:
    logging.getLogger("httpx").setLevel(logging.WARNING)


class JudgeCoherence:
    """Async reward: does the fast response fit the conversation? (intent score 1-5 -> [0, 1]).

    `totals` counts over the reward's life: completions, requests, cache_hits, failures (of which
    unusable: answered without a valid verdict), groups_dropped, structured_fallbacks (requests asked
    again without `response_format` because the server refused it).

    `structured` starts as `settings.structured_output`; the first time the server refuses the verdict
    schema (HTTP 400/422) while the same request without it is answered, it turns off for the life of
    this reward (its client), with one warning, so later requests are sent plain straight away.
    """

    def __init__(self, settings: JudgeSettings, group_size: int | None = None):
        if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
            raise ValueError(f"judge_coherence: group_size must be a positive int or None, got {group_size!r}")
        self.__name__ = "judge_coherence"
        self.settings = settings
        self.group_size = group_size
        self.template = load_template(settings.prompt_template)
        self.cache = VerdictCache(settings.cache_path)
        self.structured = settings.structured_output
        self.totals: Counter = Counter()
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def __getstate__(self):
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    async def __call__(self, prompts, completions, **columns) -> list[float | None]:
        try:
            scores, metrics = await self._score(prompts, list(completions), columns)
        except Exception as err:  # a reward never raises into the trainer: no opinion instead
            log.warning("judge: scoring failed (%s: %s); the batch gets no judge score", type(err).__name__, err)
            n = len(completions)
            scores, metrics = [None] * n, {"failures": n, "cache_hit_rate": 0.0}
        self._report(metrics, columns.get("log_metric"))
        return scores

    async def _score(self, prompts, completions: list, columns: dict):
        s = self.settings
        n = len(completions)
        texts = [completion_text(c) for c in completions]
        contexts = contexts_for(prompts, columns, n)
        template_id = f"{PROTOCOL}\n{self.template.template}"  # a protocol change makes old verdicts stale
        keys = [cache_key(s.model, template_id, ctx, text) for ctx, text in zip(contexts, texts)]
        first = {}
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        intent: dict[str, float | None] = self.cache.get_many(list(first))
        todo = {key: render(self.template, contexts[i], texts[i]) for key, i in first.items() if key not in intent}

        fallbacks_before = self.totals["structured_fallbacks"]
        outcomes = await self._ask_all(todo) if todo else []
        reasons = Counter()
        latencies = []
        fresh = {}
        for key, score, reason, latency in outcomes:
            intent[key] = score
            if score is None:
                reasons[reason] += 1
            else:
                fresh[key] = score
            if latency is not None:
                latencies.append(latency)
        self.cache.put_many(fresh)

        rewards = [reward_from_score(intent.get(key)) for key in keys]
        dropped = self._group_rule(rewards, contexts)
        failures = sum(reasons.values())
        if reasons:
            log.warning("judge: %d of %d requests gave no score: %s", failures, len(todo), _reasons(reasons))
        metrics = {
            "completions": n,
            "requests": len(todo),
            "cache_hits": n - len(todo),
            "cache_hit_rate": (n - len(todo)) / n if n else 0.0,
            "failures": failures,  # requests that gave no score, whatever the reason
            "unusable": reasons[UNUSABLE],  # of which: answered, but not a readable verdict
            "groups_dropped": dropped,
            "structured_output": float(self.structured),
            "structured_fallbacks": self.totals["structured_fallbacks"] - fallbacks_before,
        }
        if latencies:
            metrics["latency_p50"] = _percentile(latencies, 0.50)
            metrics["latency_p95"] = _percentile(latencies, 0.95)
        return rewards, metrics

    async def _ask_all(self, todo: dict[str, str]) -> list[tuple]:
        """key -> prompt; returns (key, intent score or None, failure reason, latency) per key."""
        s = self.settings
        gate = asyncio.Semaphore(s.max_concurrency)

        async def one(client, key, prompt):
            async with gate:
                start = time.perf_counter()
                try:
                    answer = await self._ask(client, prompt)
                except JudgeCallFailed as err:
                    return key, None, str(err), None
                except Exception as err:  # anything else (a bad URL, a client bug) costs this request only
                    return key, None, f"{type(err).__name__}: {err}", None
                score = parse_intent_score(answer)
                return key, score, UNUSABLE, time.perf_counter() - start

        async with new_client(s) as client:
            tasks = [asyncio.ensure_future(one(client, key, prompt)) for key, prompt in todo.items()]
            done, pending = await asyncio.wait(tasks, timeout=s.batch_timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        late = f"unfinished after batch_timeout_s={s.batch_timeout_s:g}s" if pending else ""
        return [
            task.result() if task in done else (key, None, late, None)
            for key, task in zip(todo, tasks)
        ]

    async def _ask(self, client, prompt: str) -> str:
        """One verdict, with the schema as response_format while the server takes it."""
        if not self.structured:
            return await ask(client, self.settings, prompt)
        try:
            return await ask(client, self.settings, prompt, structured=True)
        except JudgeCallFailed as err:
            if err.status not in (400, 422):
                raise
            refusal = str(err)
        answer = await ask(client, self.settings, prompt)  # fails too: the request, not the format, is bad
        with self._lock:
            self.totals["structured_fallbacks"] += 1
            if self.structured:
                self.structured = False
                log.warning("judge: the server refused response_format (%s); asking without it from now on", refusal)
        return answer

    def _group_rule(self, rewards: list, contexts: list) -> int:
        size = self.group_size
        if not size or size == 1:
            return 0
        if len(rewards) % size:
            self._warn_once("ragged", f"judge: batch of {len(rewards)} is not a multiple of group_size={size}")
        if any(len(set(contexts[i : i + size])) > 1 for i in range(0, len(contexts), size)):
            self._warn_once("mixed", f"judge: a block of group_size={size} completions mixes prompts")
        return apply_group_rule(rewards, size)

    def _report(self, metrics: dict, log_metric) -> None:
        with self._lock:
            for key in ("completions", "requests", "cache_hits", "failures", "unusable", "groups_dropped"):
                self.totals[key] += metrics.get(key, 0)
        logged = {f"judge/{k}": float(v) for k, v in metrics.items() if k not in ("completions", "cache_hits")}
        if callable(log_metric):
            for name, value in logged.items():
                log_metric(name, value)
        log.info("judge: %s", ", ".join(f"{k.split('/')[1]}={_fmt(v)}" for k, v in logged.items()))

    def _warn_once(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning(message)


def make_judge_reward(judge: dict | None, group_size: int | None = None, **params) -> JudgeCoherence:
    """The `judge_coherence` reward from the `judge:` config group (a plain dict).

    `params` (the reward's own params in the experiment) override judge keys for this reward, e.g.
    `prompt_template`. `group_size` = GRPO's num_generations (None: no group rule, e.g. offline scoring).

        reward = make_judge_reward({"base_url": "http://127.0.0.1:8001/v1", "model": "judge"}, group_size=8)
        scores = asyncio.run(reward(prompts, completions, **columns))  # float in [0, 1] or None each
    """
    return JudgeCoherence(settings_from(judge, **params), group_size=group_size)


def apply_group_rule(rewards: list, group_size: int) -> int:
    """In place: None for every completion of a group (a block of `group_size` consecutive
    completions) where any one is None. Returns the number of groups dropped."""
    dropped = 0
    for start in range(0, len(rewards), group_size):
        block = range(start, min(start + group_size, len(rewards)))
        if any(rewards[i] is None for i in block):
            dropped += 1
            for i in block:
                rewards[i] = None
    return dropped


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _reasons(reasons: Counter) -> str:
    return "; ".join(f"{count}x {reason}" for reason, count in reasons.most_common(3))


def _fmt(value: float) -> str:
    return f"{value:.3g}"
