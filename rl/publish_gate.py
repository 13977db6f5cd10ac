"""The gate of a publish: the evaluation of exactly this adapter (by content hash), and whether it meets
`serving.gate` (conf/publish/default.yaml)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from rl import adapter_files
from rl.publish_checks import PublishError, one_line
from rl.rules import ReplyRules

log = logging.getLogger("rl.publish")  # one logger for every step of a publish

DEFAULT_GATE = {"english_rate": {"min": 0.99}, "tag_rate": {"max": 0.0}, "word_ok_rate": {"min": 0.98},
                "n": {"min": 100}}
EVAL_HASH_KEY = adapter_files.EVAL_KEY  # what an evaluation records of the adapter it evaluated


class GateRefused(PublishError):
    """The evaluation is below the gate."""


def gate_failures(metrics: dict, gate: dict, rules: ReplyRules | None = None) -> list[str]:
    """`gate` = {metric: {"min": x} and/or {"max": y}} -> the failing checks, e.g. 'english_rate 0.95 < 0.99'.
    `rules`: the experiment's (rl.rules), to say which word counts word_ok_rate counts ('word_ok_rate
    (1-4 words) 0.95 < 0.98'); None when the publish has no experiment to say it."""
    failures = []
    for metric, bounds in gate.items():
        if not isinstance(bounds, dict) or not bounds or set(bounds) - {"min", "max"}:
            raise PublishError(f"serving.gate.{metric}: expected {{min: X}} and/or {{max: Y}}, got {bounds!r}")
        value = metrics.get(metric)
        label = f"{metric} ({rules.words})" if rules is not None and metric == "word_ok_rate" else metric
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            failures.append(f"{label} missing (got {value!r})")
            continue
        if "min" in bounds and value < bounds["min"]:
            failures.append(f"{label} {value:.4g} < {bounds['min']:g}")
        if "max" in bounds and value > bounds["max"]:
            failures.append(f"{label} {value:.4g} > {bounds['max']:g}")
    return failures


def evaluations_in(path: Path) -> list[dict]:
    """The metrics entries of an eval.json: {"before": m, "after": m} (a training run), {"adapter": m}
    (rl.evaluate with compare_sft=false), or one flat metrics dict."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise PublishError(f"{path}: cannot read the evaluation ({one_line(err)})") from None
    if not isinstance(data, dict) or not data:
        raise PublishError(f"{path}: expected {{\"after\": {{\"english_rate\": ...}}}}, got {type(data).__name__}")
    if EVAL_HASH_KEY in data or any(k in data for k in DEFAULT_GATE):
        return [data]
    for key, value in data.items():
        if not isinstance(value, dict):
            raise PublishError(f"{path}: field '{key}': expected a metrics object, got {value!r}")
    return list(data.values())


def find_evaluation(adapter_dir: Path, digest: str, eval_path=None, eval_dirs=()) -> tuple[dict | None, Path | None, list[str]]:
    """The evaluation of exactly this adapter (its content hash): (metrics, file, where it looked).

    With `eval_path` only that file; else the adapter folder's eval.json, its parent's (a run dir: its
    "after" entry is the run's adapter/, never a checkpoint) and rl.evaluate's reports under each of
    `eval_dirs` (newest first). A file only counts through an entry whose adapter_sha256 is `digest`."""
    if eval_path is not None:
        candidates, searched = [Path(eval_path)], [str(eval_path)]
        if not candidates[0].is_file():
            raise PublishError(f"eval={eval_path}: no such file")
    else:
        near = [adapter_dir / "eval.json", adapter_dir.parent / "eval.json"]
        reports = [p for d in eval_dirs for p in Path(d).glob("*/eval.json")]
        reports.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        candidates = [*near, *reports]
        searched = [str(p) for p in near] + [f"{d}/*/eval.json" for d in eval_dirs]
    for candidate in candidates:
        if not candidate.is_file():
            continue
        try:
            entries = evaluations_in(candidate)
        except PublishError:
            if candidate in candidates[:2] or eval_path is not None:
                raise
            log.warning("skipping %s: not a readable evaluation", candidate)
            continue
        for entry in entries:
            if entry.get(EVAL_HASH_KEY) == digest:
                return entry, candidate, searched
    return None, None, searched
