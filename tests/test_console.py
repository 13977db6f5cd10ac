"""The training console: compact step lines, TRL's dict to the log file only, the closing summary."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace

import pytest

from rl.console import QuietProgress, file_only_logger, rounded, step_line, summary_lines

TRL_LOGS = {  # one real step's dict from TRL 1.16 (shortened), as on_log receives it
    "loss": 0.164, "grad_norm": 0.74229, "learning_rate": 0.0002, "num_tokens": 2930.0,
    "completions/mean_length": 7.8125, "rewards/english_only/mean": 0.5625, "reward": 2.0109375000000002,
    "reward_std": 0.61, "rollout/english_rate": 0.5625, "rollout/tag_rate": 0.0, "rollout/word_ok_rate": 0.75,
    "rollout/mean_words": 4.5625, "total_flos": 0.0,
}  # fmt: skip


@pytest.mark.parametrize(
    "step, max_steps, step_s, eta_s, expected",
    [
        (1, 100, 1.4, 138.6, "step   1/100  reward 2.01  english 0.56  tags 0.00  words 0.75 (4.6)  1.40 s/step  eta 2m19s"),
        (100, 100, 1.25, 0.0, "step 100/100  reward 2.01  english 0.56  tags 0.00  words 0.75 (4.6)  1.25 s/step"),
        (3, 12, None, None, "step  3/12  reward 2.01  english 0.56  tags 0.00  words 0.75 (4.6)"),
        (7, 9000, 2.0, 4000.0, "step    7/9000  reward 2.01  english 0.56  tags 0.00  words 0.75 (4.6)  2.00 s/step  eta 1h06m"),
    ],
)
def test_step_line(step, max_steps, step_s, eta_s, expected):
    assert step_line(step, max_steps, TRL_LOGS, step_s, eta_s) == expected


def test_step_line_leaves_out_what_was_not_logged():
    assert step_line(2, 10, {"reward": 1.0}, None, None) == "step  2/10  reward 1.00"


@pytest.mark.parametrize(
    "value, expected",
    [(1.7843750000000016, 1.784), (0.83593751, 0.8359), (2930.0, 2930.0), (7, 7), ("x", "x"),
     ({"a": [0.123456, 12.34567]}, {"a": [0.1235, 12.35]})],
)  # fmt: skip
def test_rounded(value, expected):
    assert rounded(value) == expected


def _state(step, max_steps=10):
    return SimpleNamespace(global_step=step, max_steps=max_steps, is_world_process_zero=True)


def test_the_console_gets_one_line_per_log_and_the_file_gets_the_whole_dict(tmp_path):
    root = logging.getLogger()
    file_handler = logging.FileHandler(tmp_path / "train.log")
    root.addHandler(file_handler)
    logging.getLogger("rl.steps").handlers.clear()
    try:
        console = io.StringIO()
        progress = QuietProgress(stream=console, bar=False)
        progress.on_train_begin(None, _state(0), None)
        for step in (1, 2):
            progress.on_step_end(None, _state(step), None)
            progress.on_log(None, _state(step), None, logs=dict(TRL_LOGS))
        progress.on_log(None, _state(2), None, logs={"train_runtime": 2.2, "train_loss": 0.25})
        progress.on_train_end(None, _state(2), None)
    finally:
        root.removeHandler(file_handler)
        file_handler.close()
        logging.getLogger("rl.steps").handlers.clear()
    lines = console.getvalue().splitlines()
    assert [line[:10] for line in lines] == ["step  1/10", "step  2/10"]
    assert all("loss" not in line and "{" not in line for line in lines)
    logged = (tmp_path / "train.log").read_text()
    assert "step 1: {'loss': 0.164, 'grad_norm': 0.7423" in logged and "'reward': 2.011" in logged
    assert "total_flos" not in logged and "train_runtime" in logged


def test_the_steps_logger_never_reaches_the_console():
    logger = file_only_logger("rl.steps.test")
    assert logger.propagate is False
    assert not any(type(h) is logging.StreamHandler for h in logger.handlers)


def test_summary_names_the_run_dir_what_is_in_it_and_the_tracker(tmp_path):
    (tmp_path / "adapter").mkdir()
    (tmp_path / "eval.md").write_text("x")
    results = {"before": {"english_rate": 0.5625, "tag_rate": 0.14, "n": 128},
               "after": {"english_rate": 1.0, "tag_rate": 0.0, "n": 128}}  # fmt: skip
    lines = summary_lines(tmp_path, results, "W&B offline run: D (upload: wandb sync D)")
    assert lines[0] == f"run dir: {tmp_path}"
    assert "english_rate 0.562 -> 1.000, tag_rate 0.140 -> 0.000" in lines[1]
    assert any(line.endswith(str(tmp_path / "adapter")) for line in lines)
    assert not any("README.md" in line for line in lines)  # only what exists
    assert lines[-1].strip() == "W&B offline run: D (upload: wandb sync D)"
