"""Weights & Biases for a run: as WANDB_MODE says (online / offline / disabled), else online with
WANDB_API_KEY and offline without it; nothing with `logging=none`.

TRL's own W&B callback logs the per-step metrics (rewards per function, rollout English/tag rates,
KL, the completions table) into the run opened here. This module adds the end-of-run evaluation
table and the before/after chart. W&B is an outside service: a failing `init` is retried once in
offline mode, and a failing upload is logged and counted, never fatal to training.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from common.errors import UserError
from rl.metrics import METRICS

log = logging.getLogger(__name__)


class NoTracking:
    """Stand-in when W&B is off, so the training code logs unconditionally."""

    report_to = "none"
    failures = 0
    fallbacks = 0

    def log_evaluation(self, results: dict, rows: dict, chart: Path | None) -> None:
        pass

    def finish(self) -> None:
        pass

    def where(self) -> str | None:
        return None


class WandbTracking:
    report_to = "wandb"

    def __init__(self, run):
        self.run = run
        self.failures = 0
        self.fallbacks = 0  # online starts that failed and went offline instead

    def log_evaluation(self, results: dict, rows: dict, chart: Path | None) -> None:
        import wandb

        try:
            metrics = [*METRICS, "top_reply"]
            table = wandb.Table(columns=["when", *metrics])
            for name, values in results.items():
                table.add_data(name, *[values.get(m) for m in metrics])
            replies = wandb.Table(columns=["when", "intent", "robot", "child", "reference", "reply", "fit", "total"])
            for name, name_rows in rows.items():
                for r in name_rows:
                    replies.add_data(name, r.get("intent", ""), r["last_robot_turn"], r["child_reply"],
                                     r.get("reference", ""), r["reply"], r.get("fit"), r["total"])
            payload = {"eval/metrics": table, "eval/replies": replies}
            if chart is not None and chart.exists():
                payload["eval/before_after"] = wandb.Image(str(chart))
            self.run.log(payload)
            for name, values in results.items():
                for key, value in summary_metrics(name, values).items():
                    self.run.summary[key] = value
        except Exception as err:  # an upload problem must not cost the trained adapter
            self.failures += 1
            log.warning("wandb: could not log the evaluation (%s); failures=%d", err, self.failures)

    def where(self) -> str | None:
        """Where the run's W&B data is, in one line: the run's URL, or the offline folder and how to upload it."""
        try:
            if self.run.offline:
                folder = Path(self.run.dir).parent
                return f"W&B offline run: {folder} (upload: wandb sync {folder})"
            return f"W&B run: {self.run.url}"
        except Exception:  # a tracker never costs the run
            return None

    def finish(self) -> None:
        try:
            self.run.finish()
        except Exception as err:
            self.failures += 1
            log.warning("wandb: finish failed (%s); the offline files stay in the run dir", err)


MODES = {"online": "online", "run": "online", "offline": "offline", "dryrun": "offline", "disabled": "disabled"}


def wandb_mode(env=os.environ) -> str:
    """`WANDB_MODE` (online / offline / disabled) when set; else online with WANDB_API_KEY, offline without.
    Only the key's presence is looked at, and only when WANDB_MODE is not set."""
    mode = (env.get("WANDB_MODE") or "").strip().lower()
    if mode:
        if mode not in MODES:
            raise ValueError(f"WANDB_MODE: expected online, offline or disabled, got {mode!r}")
        return MODES[mode]
    return "online" if env.get("WANDB_API_KEY") else "offline"


def check_tracking(logging_cfg) -> None:
    """WANDB_MODE makes sense when W&B is on (UserError, one line), before any work; `logging_cfg` is
    rl.config.LoggingConfig, whose backend the config check has already vetted."""
    if logging_cfg.backend == "wandb":
        try:
            wandb_mode()
        except ValueError as err:
            raise UserError(str(err)) from None


@contextmanager
def _without_key(mode: str) -> Iterator[None]:
    """Offline, W&B gets no key: not in its settings, not in the service process it starts."""
    key = os.environ.pop("WANDB_API_KEY", None) if mode != "online" else None
    try:
        yield
    finally:
        if key is not None:
            os.environ["WANDB_API_KEY"] = key


def summary_metrics(name: str, values: dict) -> dict[str, float]:
    """eval/NAME/METRIC and eval/NAME/INTENT/METRIC: every number of one evaluation, flat for W&B."""
    flat = {f"eval/{name}/{m}": values[m] for m in METRICS if isinstance(values.get(m), (int, float))}
    for intent, per in (values.get("by_intent") or {}).items():
        for m, v in per.items():
            if isinstance(v, (int, float)):
                flat[f"eval/{name}/{intent}/{m}"] = v
    return flat


def start_tracking(logging_cfg, run_dir: Path, config, run_name: str):
    """`logging:` config group (rl.config.LoggingConfig) -> a tracker; W&B files go under the run dir.
    `config`: the whole run config (a dataclass), recorded as the W&B run's config.

    The mode comes from WANDB_MODE (see `wandb_mode`); `disabled` (or logging=none) is no W&B at all.
    An online start that fails (no network, a wrong host, a bad key) falls back to an offline run with
    a fresh run id (the failed one stays reserved by the W&B service), counted in `fallbacks` and in
    the run's summary; an offline start that fails too leaves training without W&B."""
    if logging_cfg.backend == "none":
        log.info("W&B off (logging=none)")
        return NoTracking()
    mode = wandb_mode()
    if mode == "disabled":
        log.info("W&B off (WANDB_MODE=disabled)")
        return NoTracking()
    import wandb

    kwargs = dict(
        project=logging_cfg.project,
        entity=logging_cfg.entity,
        group=logging_cfg.group,
        name=logging_cfg.run_name or run_name,
        tags=list(logging_cfg.tags),
        config=dataclasses.asdict(config),
        dir=str(run_dir),
        resume="allow",
    )
    settings = wandb.Settings(init_timeout=float(logging_cfg.init_timeout_s), silent=True)
    run_id, fallbacks = _run_id(run_dir), 0
    for attempt_mode in dict.fromkeys([mode, "offline"]):
        try:
            with _without_key(attempt_mode):
                run = wandb.init(mode=attempt_mode, id=run_id, settings=settings, **kwargs)
        except Exception as err:
            reason = " ".join(str(err).split())[:300]
            if attempt_mode == "online":
                fallbacks += 1
                run_id = f"{run_id}-offline-{secrets.token_hex(3)}"
                log.warning("W&B online start failed (%s); logging offline instead as run %s (fallbacks=%d); "
                            "upload it later with `wandb sync %s/wandb`", reason, run_id, fallbacks, run_dir)
            else:
                log.warning("W&B offline start failed (%s)", reason)
            continue
        log.info("W&B %s: project=%s run=%s id=%s", attempt_mode, kwargs["project"], run.name, run.id)
        tracker = WandbTracking(run)
        tracker.fallbacks = fallbacks
        if fallbacks:
            try:
                run.summary["wandb/fallbacks"] = fallbacks
            except Exception:  # a summary write must not stop training
                tracker.failures += 1
        return tracker
    log.warning("W&B unavailable: training continues without it")
    return NoTracking()


def _run_id(run_dir: Path) -> str:
    """One W&B run per run dir, so `resume=true` continues the same W&B run."""
    import hashlib

    return hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]
