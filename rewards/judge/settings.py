"""The `judge:` config group: `JudgeSettings` is its schema (rl/config.py), validated by `checked()`.

Defaults match conf/judge/vllm.yaml, so a dict with only `base_url` and `model` works too. The API key
is never a setting: it is read from the environment (`JUDGE_API_KEY`) when a request is sent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from string import Template
from typing import Any

API_KEY_ENV = "JUDGE_API_KEY"
DEFAULT_TEMPLATE = Path(__file__).resolve().parents[1] / "prompts" / "judge_coherence.txt"  # package data
# $fields: the JSON object of all four (the packaged template); the others: one escaped field each.
TEMPLATE_FIELDS = {"fields", "last_robot_turn", "child_reply", "main_answer", "main_answer_line", "fast_response"}


@dataclass
class JudgeSettings:
    base_url: str | None = None  # e.g. http://127.0.0.1:8001/v1
    model: str | None = None  # the name the server serves
    enabled: bool = False  # judge=vllm turns it on; judge=none leaves it off
    required: bool = True
    max_concurrency: int = 64
    timeout_s: float = 20.0  # one HTTP attempt
    retries: int = 2  # extra attempts after a timeout, connection error, 429 or 5xx
    backoff_s: float = 0.5  # first retry delay, doubled each retry, capped by max_backoff_s
    max_backoff_s: float = 4.0
    batch_timeout_s: float | None = 90.0  # the most one reward call may take; what is unfinished -> None
    temperature: float = 0.0
    max_tokens: int = 200
    prompt_template: str | None = None  # None: the packaged rewards/prompts/judge_coherence.txt
    structured_output: bool = True  # send the verdict schema as response_format (dropped if the server refuses)
    cache_path: str | None = "checkpoints/judge_cache/judge.sqlite"  # None: no cache across calls

    def worst_case_request_s(self) -> float:
        """Upper bound on one request with all its retries (what a dead or slow judge can cost)."""
        return (self.retries + 1) * self.timeout_s + self.retries * self.max_backoff_s

    def checked(self) -> JudgeSettings:
        """Self, when every value is usable; ValueError with one line naming the bad key otherwise."""
        for key in ("base_url", "model"):
            if not getattr(self, key):
                raise ValueError(f"judge.{key}: required (see docs/judge.md), got {getattr(self, key)!r}")
        checks = [
            ("base_url", str(self.base_url).startswith(("http://", "https://")), "must start with http:// or https://"),
            ("max_concurrency", self.max_concurrency >= 1, "must be >= 1"),
            ("timeout_s", self.timeout_s > 0, "must be > 0"),
            ("retries", self.retries >= 0, "must be >= 0"),
            ("backoff_s", self.backoff_s >= 0, "must be >= 0"),
            ("max_backoff_s", self.max_backoff_s >= 0, "must be >= 0"),
            ("batch_timeout_s", self.batch_timeout_s is None or self.batch_timeout_s > 0, "must be > 0 or null"),
            ("max_tokens", self.max_tokens >= 1, "must be >= 1"),
        ]
        for key, ok, problem in checks:
            if not ok:
                raise ValueError(f"judge.{key}: {problem}, got {getattr(self, key)!r}")
        return self


_NAMES = {f.name for f in fields(JudgeSettings)}


def settings_from(judge: JudgeSettings | Mapping[str, Any] | None, **overrides) -> JudgeSettings:
    """The judge config group (typed, or a plain mapping) plus per-reward `params` overrides -> checked settings.

    Raises ValueError with one line naming the bad key."""
    if judge is None:
        raise ValueError(
            "judge_coherence: no judge configured (judge group is `none`); use judge=vllm or drop judge_coherence"
        )
    merged = {**(asdict(judge) if isinstance(judge, JudgeSettings) else {"enabled": True, **judge}), **overrides}
    unknown = sorted(set(merged) - _NAMES)
    if unknown:
        raise ValueError(f"judge: unknown keys {unknown}; known: {', '.join(sorted(_NAMES))}")
    if not merged.get("enabled"):
        raise ValueError("judge_coherence: judge.enabled is false; use judge=vllm or drop judge_coherence")
    return JudgeSettings(**merged).checked()


def api_key() -> str | None:
    """The judge's API key from the environment; sent as a Bearer token, never stored or logged."""
    return os.environ.get(API_KEY_ENV) or None


def load_template(path: str | None) -> Template:
    """The judge prompt: `path`, or the packaged default. Placeholders: $fields (the JSON object of all
    fields), or the single fields $last_robot_turn, $child_reply, $main_answer, $main_answer_line,
    $fast_response; the reply must appear ($fields or $fast_response)."""
    if path is None:
        text = DEFAULT_TEMPLATE.read_text(encoding="utf-8")
        where = "rewards/prompts/judge_coherence.txt"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise ValueError(f"judge.prompt_template: cannot read {path}: {err.strerror or err}") from None
        where = str(path)
    template = Template(text)
    if not template.is_valid():
        raise ValueError(f"{where}: invalid placeholder (use $$ for a literal dollar sign)")
    names = set(template.get_identifiers())
    unknown = sorted(names - TEMPLATE_FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown placeholders {unknown}; known: {', '.join(sorted(TEMPLATE_FIELDS))}")
    if not names & {"fields", "fast_response"}:
        raise ValueError(f"{where}: the template must contain $fields (or $fast_response)")
    return template
