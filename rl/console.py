"""What a training run prints: one compact line per logging step, a progress bar, and where it all went.

TRL's per-step log dict (about 1 KB, 40 keys) is for W&B and the run's `train.log`, not for a person
watching a terminal. This callback replaces transformers' ProgressCallback/PrinterCallback:

    step  12/100  reward 2.31  english 0.94  tags 0.00  words 0.97 (4.1)  1.24 s/step  eta 1m49s

- on a terminal, above a tqdm bar; in a pipe or a file (CI, `> log`), no bar: the lines carry the
  progress, so a 100-step nano run prints about 10 KB instead of 100 KB;
- the full dict, floats rounded, goes to the `rl.steps` logger, which writes to the run's log file only
  (the file handlers Hydra gave the root logger), never to the console.
"""

from __future__ import annotations

import logging
import sys
import time

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

# (label, TRL/rl.rollout_metrics key, digits) in the order the line shows them
FIELDS = (
    ("reward", "reward", 2),
    ("english", "rollout/english_rate", 2),
    ("tags", "rollout/tag_rate", 2),
    ("words", "rollout/word_ok_rate", 2),
)
_END_KEYS = ("train_runtime", "train_loss")  # the end-of-training summary TRL logs once


def rounded(value, digits: int = 4):
    """Floats to `digits` significant decimals for people (1.7843750000000016 -> 1.7844); the rest as is."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if abs(value) >= 1 else round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def step_line(step: int, max_steps: int, logs: dict, step_s: float | None, eta_s: float | None) -> str:
    width = len(str(max_steps))
    parts = [f"step {step:>{width}}/{max_steps}"]
    for label, key, digits in FIELDS:
        value = logs.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{label} {value:.{digits}f}")
    mean_words = logs.get("rollout/mean_words")
    if isinstance(mean_words, (int, float)) and parts[-1].startswith("words"):
        parts[-1] += f" ({mean_words:.1f})"
    if step_s is not None:
        parts.append(f"{step_s:.2f} s/step")
    if eta_s is not None and step < max_steps:
        parts.append(f"eta {_duration(eta_s)}")
    return "  ".join(parts)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def file_only_logger(name: str = "rl.steps") -> logging.Logger:
    """A logger that writes to the root logger's file handlers (Hydra's `<run dir>/train.log`) only."""
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) and handler not in logger.handlers:
            logger.addHandler(handler)
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


class QuietProgress(TrainerCallback):
    """Compact step lines (+ a bar on a terminal) on the console; TRL's full log dict to the log file."""

    def __init__(self, stream=None, bar: bool | None = None):
        self.stream = stream or sys.stdout
        self.bar_wanted = (sys.stderr.isatty() and self.stream.isatty()) if bar is None else bar
        self.bar = None
        self.steps_log = file_only_logger()
        self.started = None
        self.first_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.started = time.monotonic()
        self.first_step = state.global_step  # a resumed run counts its pace from where it resumed
        if self.bar_wanted:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, dynamic_ncols=True, leave=False)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        logs = {k: v for k, v in logs.items() if k != "total_flos"}
        self.steps_log.info("step %d: %s", state.global_step, rounded(logs))
        if any(key in logs for key in _END_KEYS) and not any(key == "reward" for key in logs):
            return  # the end-of-training summary: the final lines say what matters
        done = state.global_step - self.first_step
        elapsed = time.monotonic() - self.started if self.started is not None else None
        step_s = elapsed / done if elapsed is not None and done > 0 else None
        eta = step_s * (state.max_steps - state.global_step) if step_s is not None else None
        self.write(step_line(state.global_step, state.max_steps, logs, step_s, eta))

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)


def quiet_console(trainer) -> QuietProgress:
    """Swap the trainer's console callbacks (ProgressCallback / PrinterCallback) for QuietProgress."""
    for callback in (ProgressCallback, PrinterCallback):
        trainer.remove_callback(callback)
    progress = QuietProgress()
    trainer.add_callback(progress)
    return progress


def quiet_libraries() -> None:
    """Library chatter the console does not need: transformers' weight-loading bars and info lines."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_warning()


def summary_lines(run_dir, results: dict, tracker_line: str | None, published: str | None = None,
                  rules=None) -> list[str]:
    """The last lines of a run: what it measured, where everything is, what to do next.
    `rules`: the run's rl.rules.ReplyRules, to say which word counts word_ok_rate counted."""
    from pathlib import Path

    run_dir = Path(run_dir)
    lines = [f"run dir: {run_dir}"]
    if results.get("before") and results.get("after"):
        b, a = results["before"], results["after"]
        pairs = [(m, b.get(m), a.get(m)) for m in ("english_rate", "tag_rate", "word_ok_rate", "judge_mean")]
        shown = [f"{m}{f' ({rules.words})' if rules is not None and m == 'word_ok_rate' else ''} {x:.3f} -> {y:.3f}"
                 for m, x, y in pairs if isinstance(x, float) and isinstance(y, float)]
        lines.append(f"  held-out (n={a.get('n')}): " + ", ".join(shown))
    for name, what in (("adapter", "trained adapter"), ("README.md", "adapter card"),
                       ("eval.md", "evaluation"), ("train.log", "full log (every step's metrics)")):  # fmt: skip
        if (run_dir / name).exists():
            lines.append(f"  {what + ':':<33}{run_dir / name}")
    if tracker_line:
        lines.append(f"  {tracker_line}")
    if published:
        lines.append(f"  published: {published}")
    return lines
