"""rl.resume: resume=true picks the newest checkpoint that is complete and loads, names what it skips, deletes nothing.

The end-to-end resume of a real run (Ctrl-C, then resume=true past a broken newer checkpoint) is in
tests/test_train.py.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from rl.adapter_files import stamp
from rl.resume import checkpoint_problem, load_before, pick_checkpoint, save_before
from tests.test_publish import make_adapter


def make_checkpoint(run_dir: Path, step: int) -> Path:
    """A checkpoint folder as the trainer saves it: adapter, optimizer, scheduler, RNG state, trainer state."""
    folder = make_adapter(run_dir / f"checkpoint-{step}", seed=step)
    torch.save({"state": {0: {"exp_avg": torch.zeros(3)}}, "param_groups": [{"lr": 1e-4}]}, folder / "optimizer.pt")
    torch.save({"last_epoch": step}, folder / "scheduler.pt")
    torch.save({"cpu": torch.get_rng_state()}, folder / "rng_state.pth")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    return folder


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BREAKS = [
    # (what a kill, a full disk or a bad copy leaves, what the log says)
    (lambda c: (c / "trainer_state.json").unlink(), "no trainer_state.json (the save did not finish)"),
    (lambda c: (c / "trainer_state.json").write_text('{"global_step": 4, "log_hi'), "trainer_state.json unreadable"),
    (lambda c: (c / "trainer_state.json").write_text('{"global_step": 3}'), "'global_step' is 3, expected 4"),
    (lambda c: truncate(c / "adapter_model.safetensors"), "adapter_model.safetensors: not a readable weights file"),
    (lambda c: (c / "adapter_model.safetensors").unlink(), "no adapter weights"),
    (lambda c: (c / "adapter_config.json").write_text(""), "cannot read the adapter config"),
    (lambda c: (c / "optimizer.pt").unlink(), "no optimizer.pt"),
    (lambda c: truncate(c / "optimizer.pt"), "optimizer.pt unreadable"),
    (lambda c: truncate(c / "rng_state.pth"), "rng_state.pth unreadable"),
]


@pytest.mark.parametrize("break_it,reason", BREAKS)
def test_a_broken_newest_checkpoint_is_skipped_named_and_kept(tmp_path, caplog, break_it, reason):
    good = make_checkpoint(tmp_path, 2)
    broken = make_checkpoint(tmp_path, 4)
    break_it(broken)
    files_before = sorted(p.name for p in broken.iterdir())
    with caplog.at_level(logging.WARNING, logger="rl.resume"):
        assert pick_checkpoint(tmp_path) == good
    assert f"skipping {broken}: " in caplog.text and reason in caplog.text
    assert "continuing from checkpoint-2" in caplog.text
    assert sorted(p.name for p in broken.iterdir()) == files_before  # nothing deleted


def test_the_newest_complete_checkpoint_wins_by_step_not_by_name(tmp_path):
    for step in (2, 10, 4):
        make_checkpoint(tmp_path, step)
    (tmp_path / "checkpoint-12").mkdir()  # a save killed before its first file
    assert pick_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
    assert checkpoint_problem(tmp_path / "checkpoint-10", 10) is None


def test_no_complete_checkpoint_starts_over_and_says_so(tmp_path, caplog):
    assert pick_checkpoint(tmp_path) is None  # a fresh run dir: nothing to say
    broken = make_checkpoint(tmp_path, 2)
    (broken / "scheduler.pt").unlink()
    with caplog.at_level(logging.WARNING, logger="rl.resume"):
        assert pick_checkpoint(tmp_path) is None
    assert "no scheduler.pt" in caplog.text and "starting from the SFT adapter" in caplog.text
    assert broken.is_dir()


def test_the_saved_sft_evaluation_is_reused_only_when_intact_and_of_this_adapter(tmp_path, caplog):
    sft = make_adapter(tmp_path / "sft")
    path = tmp_path / "eval_before.json"
    metrics, rows = stamp({"english_rate": 0.5, "n": 2}, sft), [{"reply": "Xin chào"}]
    save_before(path, metrics, rows)
    assert load_before(path, sft) == (metrics, rows)
    assert not list(tmp_path.glob(".eval_before.json*"))  # written atomically: no temp file left

    path.write_text(path.read_text()[:100])  # what a kill during the old in-place write left
    with caplog.at_level(logging.WARNING, logger="rl.resume"):
        assert load_before(path, sft) is None
    assert "eval_before.json unreadable" in caplog.text and "evaluating the SFT adapter again" in caplog.text

    save_before(path, stamp({"english_rate": 0.5}, make_adapter(tmp_path / "other", seed=1)), rows)
    assert load_before(path, sft) is None  # an evaluation of another SFT adapter is not reused
