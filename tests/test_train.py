"""The training loop end to end on the nano model: rewards improve, runs resume, the adapter reloads."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rl.resume import checkpoint_problem, checkpoints
from tests.composed import composed

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def nano_config(*overrides: str):
    return composed("+exp=english_only", "model=nano", "logging=none", *overrides)


def step_rewards(log_history: list[dict]) -> list[float]:
    return [entry["reward"] for entry in log_history if "reward" in entry]


@pytest.fixture(scope="module")
def short_run(nano, tmp_path_factory):
    """A seeded shortened run of the README's main command."""
    from rl.train import train

    run_dir = tmp_path_factory.mktemp("run")
    config = nano_config("trainer.max_steps=24", "trainer.save_steps=12", "evaluate.n=100")
    results = train(config, run_dir)
    return config, run_dir, results


@pytest.mark.trl_compat
def test_short_run_improves_the_rewards(short_run):
    """Greedy held-out replies, scored by the experiment's own rewards, improve in 24 steps.

    Measured (seed 42, one thread): reward 1.68 -> 2.31, English 0.55 -> 0.79, tags 0.15 -> 0.07. The
    per-step sampled reward is too noisy over 24 steps of 4 prompts to assert on (2.44 -> 2.54)."""
    config, run_dir, results = short_run
    state = json.loads((run_dir / "checkpoint-24" / "trainer_state.json").read_text())
    assert len(step_rewards(state["log_history"])) == 24
    before, after = results["before"], results["after"]
    assert before["n"] == after["n"] == 100
    assert after["reward_mean"] > before["reward_mean"] + 0.3, (before, after)
    assert after["english_rate"] > before["english_rate"] + 0.15, (before, after)
    assert after["tag_rate"] < before["tag_rate"], (before, after)


def test_run_dir_holds_everything(short_run):
    config, run_dir, results = short_run
    for name in ("config.resolved.yaml", "eval.json", "eval.md", "eval.png", "adapter/adapter_config.json",
                 "checkpoint-12/trainer_state.json", "checkpoint-24/adapter_model.safetensors"):
        assert (run_dir / name).exists(), name
    saved = json.loads((run_dir / "eval.json").read_text())
    assert set(saved) == {"before", "after"}
    for metrics in saved.values():
        assert {"english_rate", "tag_rate", "word_ok_rate", "judge_mean", "n"} <= set(metrics)
        assert metrics["judge_mean"] is None  # no judge for the nano model
    assert "english_only" in (run_dir / "config.resolved.yaml").read_text()


def test_saved_adapter_reproduces_the_after_metrics(short_run):
    from rl.evaluate import evaluate_policy
    from rl.run import prepare

    config, run_dir, results = short_run
    run = prepare(config, adapter_path=str(run_dir / "adapter"), train=False)  # the setup training used
    metrics, _ = evaluate_policy(run.policy, run.tokenizer, run.held_out, run.specs, 100, config.evaluate.batch_size,
                                 config.evaluate.max_new_tokens)
    for key in ("english_rate", "tag_rate", "word_ok_rate", "n"):
        assert metrics[key] == pytest.approx(results["after"][key]), key


def test_ctrl_c_stops_a_run_started_with_sigint_ignored(nano, tmp_path):
    """A run started in the background by a script (`... &`) inherits SIGINT ignored; `kill -INT` (or the
    launcher passing a SIGTERM on) must still save and stop it, not leave it training to the end."""
    run_dir = tmp_path / "run"
    ignoring = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731 (what `&` in a script does)
    proc = subprocess.Popen([sys.executable, "-m", "rl.train", "+exp=english_only", "model=nano", "logging=none",
                             "evaluate.enabled=false", "trainer.save_steps=2", "trainer.max_steps=200",
                             f"hydra.run.dir={run_dir}"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, preexec_fn=ignoring)
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoint-2" / "trainer_state.json").exists():
        assert proc.poll() is None, proc.stdout.read()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "resume=true" in output, output[-2000:]
    assert "step 200/200" not in output


@pytest.mark.trl_compat
def test_interrupted_run_resumes_from_its_last_checkpoint(nano, tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "rl.train", "+exp=english_only", "model=nano", "logging=none",
               "evaluate.enabled=false", "trainer.save_steps=2", f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen([*command, "trainer.max_steps=200"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoint-2" / "trainer_state.json").exists():
        assert proc.poll() is None, proc.stdout.read()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
        time.sleep(0.5)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output[-2000:]
    assert "resume=true" in output
    # the Ctrl-C may land during a save: that folder lacks its last files and resume must pass over it too
    on_disk = sorted(step for step, _ in checkpoints(run_dir))
    complete = [step for step, folder in checkpoints(run_dir) if checkpoint_problem(folder, step) is None]
    assert complete and complete[0] >= 2
    assert f"last checkpoint: {run_dir / f'checkpoint-{complete[0]}'}" in output
    saved = [complete[0]]

    # a newer checkpoint whose adapter weights were cut short (a full disk): skipped, named, kept
    broken = run_dir / f"checkpoint-{on_disk[-1] + 1}"
    shutil.copytree(run_dir / f"checkpoint-{saved[-1]}", broken)
    state = json.loads((broken / "trainer_state.json").read_text())
    (broken / "trainer_state.json").write_text(json.dumps({**state, "global_step": on_disk[-1] + 1}))
    weights = (broken / "adapter_model.safetensors").read_bytes()
    (broken / "adapter_model.safetensors").write_bytes(weights[: len(weights) // 2])

    target = on_disk[-1] + 2  # even: the saves land on even steps, never on the broken (odd) one
    resumed = subprocess.run([*command, f"trainer.max_steps={target}", "resume=true"], cwd=REPO,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    output = resumed.stdout + resumed.stderr
    assert f"skipping {broken}: adapter_model.safetensors: not a readable weights file" in output
    assert f"continuing from checkpoint-{saved[-1]}" in output
    assert broken.is_dir() and len((broken / "adapter_model.safetensors").read_bytes()) == len(weights) // 2
    state = json.loads((run_dir / f"checkpoint-{target}" / "trainer_state.json").read_text())
    assert state["global_step"] == target
    logged_steps = [entry["step"] for entry in state["log_history"] if "reward" in entry]
    assert logged_steps == list(range(1, target + 1))  # the resumed run continued, it did not start over


def test_evaluate_cli_scores_a_published_adapter(short_run, tmp_path):
    from rl.publish import publish

    config, run_dir, results = short_run
    entry = publish(run_dir / "adapter", tmp_path / "serving", "fastresponse", config.model.serving_base_model,
                    metrics=results["after"], force=True, source_run=run_dir)
    assert entry.exists()
    out = tmp_path / "eval"
    result = subprocess.run(
        [sys.executable, "-m", "rl.evaluate", "+exp=english_only", "model=nano", "logging=none", "evaluate.n=100",
         f"adapter={tmp_path / 'serving' / 'fastresponse'}", f"hydra.run.dir={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "eval.json").read_text())
    assert set(report) == {"before", "after"}
    # the published copy is the trained adapter: same replies, same metrics as at the end of training
    for key in ("english_rate", "tag_rate", "word_ok_rate", "n"):
        assert report["after"][key] == pytest.approx(results["after"][key]), key
        assert report["before"][key] == pytest.approx(results["before"][key]), key
    assert (out / "eval.md").read_text().count("## Worst replies by fit") == 2 and (out / "eval.png").exists()


def test_the_gate_judges_exactly_what_it_publishes(short_run, tmp_path):
    """The run's eval.json gates RUN/adapter (its after metrics); a checkpoint needs its own evaluation,
    and rl.evaluate's report of it is what gates it then."""
    from rl.publish import GateRefused, publish_from_config

    config, run_dir, results = short_run
    config = dataclasses.replace(config, serving=dataclasses.replace(config.serving, dir=str(tmp_path / "serving"),
                                                                      evaluations=[]))
    english = results["after"]["english_rate"]
    with pytest.raises(GateRefused, match=rf"below the gate: english_rate {english:.4g} < 0.99"):
        publish_from_config(config, run_dir / "adapter")  # found RUN/eval.json, matched its "after" entry
    checkpoint = run_dir / "checkpoint-12"
    with pytest.raises(GateRefused, match="no evaluation of this adapter") as err:
        publish_from_config(config, checkpoint)
    command = f"python -m rl.evaluate +exp=english_only adapter={checkpoint} model=nano"
    assert f"evaluate it first: {command} (serving.force=true" in str(err.value)

    out = tmp_path / "eval"  # the command as the message gives it, plus where to write and no W&B
    done = subprocess.run([sys.executable, *command.split()[1:], "logging=none", "evaluate.n=100", "compare_sft=false",
                           f"hydra.run.dir={out}"], cwd=REPO, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "eval.json").read_text())["adapter"]
    config.serving.evaluations = [str(tmp_path)]  # where rl.evaluate wrote: <dir>/*/eval.json
    with pytest.raises(GateRefused, match=rf"below the gate: english_rate {report['english_rate']:.4g} < 0.99"):
        publish_from_config(config, checkpoint)
    assert not (tmp_path / "serving").exists() or not list((tmp_path / "serving").glob(".versions/*/v*"))


def test_evaluate_a_whole_test_file_under_the_served_prompt(short_run, tmp_path):
    """data.eval_size=all evaluates every record of a file kept apart as a test set (no split, no training
    prompts), here in the users' served format 2 under their system prompt."""
    from rl.evaluate import evaluate_adapter

    _, run_dir, _ = short_run
    served_system = "This is conversation of Assistant and User. Must AI response in English, continues for conversation"
    config = composed("+exp=english_only", "model=nano", "logging=none", f"adapter={run_dir / 'adapter'}",
                      f"data.path={REPO / 'tests' / 'data' / 'unseen_pika.jsonl'}", "data.eval_size=all",
                      "data.prompt_format=history", "history=served", f'data.system_prompt="{served_system}"',
                      "compare_sft=false", config_name="evaluate_cli")
    results = evaluate_adapter(config, tmp_path)
    metrics = results["adapter"]
    assert metrics["n"] == 60  # every record, though evaluate.n is 128 and the file has 60 conversations
    assert set(metrics["by_intent"]) == {"positive", "negative", "neutral", "fallback", "silence"}
    for key in ("english_rate", "empty_rate", "distinct_rate", "top_reply_rate", "fit_rate"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert json.loads((tmp_path / "eval.json").read_text()) == json.loads(json.dumps(results))
