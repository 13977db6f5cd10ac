"""Bad config fails fast: one line naming key, value and rule, before any data, model or server is touched.

The entry points run in-process with the loaders replaced by functions that fail the test if called, so
"nothing loaded" is asserted, not assumed. Each case is a row of issue 11's table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NANO = ["+exp=english_only", "model=nano", "logging=none"]


@pytest.fixture
def nothing_loads(monkeypatch):
    """Any model, data or judge work makes the test fail."""
    import rewards.judge
    import rl.data
    import rl.model

    def forbidden(*args, **kwargs):
        raise AssertionError("loaded something before the config was checked")

    for module, name in ((rl.model, "load_policy"), (rl.model, "ensure_built"), (rl.data, "build_datasets"),
                         (rl.data, "load_records"), (rewards.judge, "preflight")):
        monkeypatch.setattr(module, name, forbidden)


def run_entry(main, argv: list[str], monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["prog", *argv])
    with pytest.raises(SystemExit) as done:
        main()
    return done.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["trainer.learning_rate=abc"], "error: trainer.learning_rate: expected float, got 'abc'"),
        (["trainer.learning_rate=-1e-5"], "error: trainer.learning_rate: must be > 0, got -1e-05"),
        (["rollout.num_generations=0"], "error: rollout.num_generations: must be >= 2, got 0"),
        (["trainer.max_steps=-5"], "error: trainer.max_steps: must be >= 1, got -5"),
        (["rollout.num_generations=3", "trainer.per_device_train_batch_size=0"],
         "error: trainer.per_device_train_batch_size: must be >= 1, got 0"),
        (["rollout.num_generations=3"], "error: rollout.num_generations: 3 does not divide the 32 completions per step"),
        (["rollout.temperature=abc"], "error: rollout.temperature: expected float, got 'abc'"),
        (["rollout.temperature=0"], "error: rollout.temperature: must be > 0, got 0"),
        (["trainer.max_step=10"], "error: trainer.max_step: unknown key (did you mean 'max_steps'?)"),
        (["+trainer.max_step=10"], "error: trainer.max_step: unknown key (did you mean 'max_steps'?)"),
        (["trainer.loss_type=ppo"], "error: trainer.loss_type: expected one of grpo, dr_grpo, dapo"),
        (["model.adapter_mode=merge"], "error: model.adapter_mode: expected one of continue, fresh, got 'merge'"),
        (["data.path=/nonexistent/pika.json"], "error: data.path: no such file, got '/nonexistent/pika.json'"),
        (["model=nanoo"], "error: model=nanoo: no such option (did you mean 'nano'?)"),
        (["+rewards.english_ony.weight=1"], "error: rewards.english_ony: unknown reward (did you mean 'english_only'?)"),
        (["rewards.word_count.params.good_max_words=2"], "error: rewards.word_count.params: need 1 <= best_max_words"),
    ],
)  # fmt: skip
def test_bad_training_override_is_one_line_and_loads_nothing(overrides, message, tmp_path, nothing_loads,
                                                           monkeypatch, capsys):
    from rl.train import main

    run_dir = tmp_path / "run"
    code, err = run_entry(main, [*NANO, *overrides, f"hydra.run.dir={run_dir}"], monkeypatch, capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), err
    assert "Traceback" not in err and "+trainer" not in err  # never Hydra's "append with +key" advice
    assert not run_dir.exists()  # nothing written


def test_every_failing_rule_is_named_at_once(nothing_loads, monkeypatch, capsys):
    from rl.train import main

    code, err = run_entry(main, [*NANO, "trainer.max_steps=0", "rollout.top_p=2", "data.eval_size=0"],
                          monkeypatch, capsys)
    assert code == 1
    assert err.strip().splitlines() == [
        "error: data.eval_size: must be >= 1 (or 'all') while evaluate.enabled, got 0",
        "error: rollout.top_p: must be in (0, 1], got 2.0",
        "error: trainer.max_steps: must be >= 1, got 0",
    ]


@pytest.mark.parametrize(
    "module, argv, message",
    [
        ("rl.evaluate", [*NANO, "adapter=/nonexistent/adapter"], "error: adapter: no such folder"),
        ("rl.evaluate", [*NANO], "error: adapter: required, not set (pass adapter=...)"),
        ("rl.evaluate", [*NANO, "adapter=.", "evaluate.n=0"], "error: evaluate.n: must be >= 1, got 0"),
        ("rl.launch", ["+exp=english_only", "rollout=vllm_lora", "rollout.server.gpu_memory_utilization=lots"],
         "error: rollout.server.gpu_memory_utilization: expected float, got 'lots'"),
        ("rl.publish", ["serving.force=maybe"], "error: serving.force: expected true or false, got 'maybe'"),
        ("rl.score", ["+exp=english_only", "judge=none", "input=/nonexistent.jsonl", "output=out.jsonl"],
         "error: input: no such file, got '/nonexistent.jsonl'"),
    ],
)  # fmt: skip
def test_every_entry_point_checks_before_it_loads(module, argv, message, nothing_loads, monkeypatch, capsys):
    import importlib

    code, err = run_entry(importlib.import_module(module).main, argv, monkeypatch, capsys)
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[0].startswith(message), err


def test_bad_override_exits_within_seconds_from_the_shell(tmp_path):
    result = subprocess.run([sys.executable, "-m", "rl.train", *NANO, "rollout.num_generations=0",
                             f"hydra.run.dir={tmp_path / 'run'}"],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: rollout.num_generations: must be >= 2, got 0"]


def test_nano_cpu_threads_take_effect():
    """`_self_` comes before the groups in conf/config.yaml, so model=nano's cpu_threads: 1 is not shadowed."""
    result = subprocess.run([sys.executable, "-m", "rl.train", "+exp=english_only", "model=nano", "--cfg", "job"],
                            capture_output=True, text=True, check=True, cwd=REPO, timeout=60)
    assert "\ncpu_threads: 1\n" in result.stdout
    from tests.composed import composed

    nano, real = composed("+exp=english_only", "model=nano"), composed("+exp=english_only")
    assert (nano.cpu_threads, real.cpu_threads) == (1, None)
    # every other model-group setting reaches the config too (none is shadowed by conf/config.yaml)
    assert (nano.trainer.max_steps, nano.trainer.learning_rate, nano.trainer.per_device_train_batch_size) == (
        100, 2.0e-4, 32)


# ---------------------------------------------------------------- the score CLI


def _score(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rl.score", "+exp=english_only", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120, env={**os.environ, **(env or {})})


def test_score_refuses_to_write_over_its_input(tmp_path):
    data = tmp_path / "in.json"
    rows = [{"previous_conversation": [{"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "Hi"}],
             "assistant_fast_response": "Hello!"}]
    data.write_text(json.dumps(rows))
    data.chmod(0o644)
    before = data.read_bytes()
    result = _score("judge=none", f"input={data}", f"output={tmp_path / '.' / 'in.json'}")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: output: is the input file")
    assert data.read_bytes() == before and (data.stat().st_mode & 0o777) == 0o644


def test_score_warns_once_when_an_optional_judge_is_down(tmp_path):
    data = tmp_path / "in.jsonl"
    row = {"previous_conversation": [{"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "Hi"}],
           "completion": "Hello!"}
    data.write_text("\n".join(json.dumps(row) for _ in range(3)) + "\n")
    result = _score("judge.base_url=http://127.0.0.1:9/v1", "judge.required=false", "judge.retries=0",
                    f"input={data}", f"output={tmp_path / 'out.jsonl'}")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: judge")]
    assert len(warnings) == 1 and "127.0.0.1:9" in warnings[0], result.stderr
    scored = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["rewards"]["judge_coherence"] for r in scored] == [None] * 3
