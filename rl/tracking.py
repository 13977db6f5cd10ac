"""Weights & Biases for a run: online with WANDB_API_KEY, offline without it, nothing with `logging=none`.

TRL's own W&B callback logs the per-step metrics (rewards per function, rollout English/tag rates,
KL, the completions table) into the run opened here. This module adds the end-of-run evaluation
table and the before/after chart. W&B is an outside service: a failing `init` is retried once in
offline mode, and a failing upload is logged and counted, never fatal to training.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class NoTracking:
    """Stand-in when W&B is off, so the training code logs unconditionally."""

    report_to = "none"
    failures = 0

    def log_evaluation(self, results: dict, rows: dict, chart: Path | None) -> None:
        pass

    def finish(self) -> None:
        pass


class WandbTracking:
    report_to = "wandb"

    def __init__(self, run):
        self.run = run
        self.failures = 0

    def log_evaluation(self, results: dict, rows: dict, chart: Path | None) -> None:
        import wandb

        try:
            metrics = ["english_rate", "tag_rate", "word_ok_rate", "judge_mean", "n"]
            table = wandb.Table(columns=["when", *metrics])
            for name, values in results.items():
                table.add_data(name, *[values.get(m) for m in metrics])
            replies = wandb.Table(columns=["when", "robot", "child", "reply", "total"])
            for name, name_rows in rows.items():
                for r in name_rows:
                    replies.add_data(name, r["last_robot_turn"], r["child_reply"], r["reply"], r["total"])
            payload = {"eval/metrics": table, "eval/replies": replies}
            if chart is not None and chart.exists():
                payload["eval/before_after"] = wandb.Image(str(chart))
            self.run.log(payload)
            for name, values in results.items():
                for m in metrics:
                    if values.get(m) is not None:
                        self.run.summary[f"eval/{name}/{m}"] = values[m]
        except Exception as err:  # an upload problem must not cost the trained adapter
            self.failures += 1
            log.warning("wandb: could not log the evaluation (%s); failures=%d", err, self.failures)

    def finish(self) -> None:
        try:
            self.run.finish()
        except Exception as err:
            self.failures += 1
            log.warning("wandb: finish failed (%s); the offline files stay in the run dir", err)


def start_tracking(logging_cfg: dict, run_dir: Path, config: dict, run_name: str):
    """`logging:` config group -> a tracker; W&B files go under the run dir."""
    if logging_cfg.get("backend", "none") == "none":
        log.info("W&B off (logging=none)")
        return NoTracking()
    if logging_cfg["backend"] != "wandb":
        raise ValueError(f"logging.backend: expected 'wandb' or 'none', got {logging_cfg['backend']!r}")
    import wandb

    mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
    kwargs = dict(
        project=logging_cfg.get("project"),
        entity=logging_cfg.get("entity"),
        group=logging_cfg.get("group"),
        name=logging_cfg.get("run_name") or run_name,
        tags=list(logging_cfg.get("tags") or []),
        config=config,
        dir=str(run_dir),
        resume="allow",
        id=_run_id(run_dir),
    )
    for attempt_mode in dict.fromkeys([mode, "offline"]):
        try:
            run = wandb.init(mode=attempt_mode, settings=wandb.Settings(init_timeout=90, silent=True), **kwargs)
            log.info("W&B %s: project=%s run=%s", attempt_mode, kwargs["project"], run.name)
            return WandbTracking(run)
        except Exception as err:
            log.warning("W&B %s init failed (%s)", attempt_mode, err)
    log.warning("W&B unavailable: training continues without it")
    return NoTracking()


def _run_id(run_dir: Path) -> str:
    """One W&B run per run dir, so `resume=true` continues the same W&B run."""
    import hashlib

    return hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]
