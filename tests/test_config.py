"""The Hydra config tree: defaults are the real job, `model=nano` is the CPU face, experiments compose."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rl.config import ConfigError
from rl.model import ModelConfigError, check_adapter_base
from tests.composed import composed

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_defaults_are_the_real_job():
    cfg = composed()
    assert cfg.model.name_or_path == "Qwen/Qwen2.5-1.5B-Instruct"
    assert cfg.model.adapter_path == "checkpoints/sft"
    assert cfg.data.path == "data/pika_sft.json"
    assert cfg.judge.enabled is True
    assert cfg.rewards == {}


def test_nano_switches_model_data_and_judge():
    cfg = composed("+exp=english_only", "model=nano")
    assert cfg.model.name_or_path == "checkpoints/nano/base"
    assert cfg.data.path == "data/demo/pika_demo.jsonl"
    assert cfg.judge.enabled is False
    assert cfg.exp_name == "english_only"


def test_experiment_names_rewards_with_gates():
    specs = {s.name: s for s in composed("+exp=english_only").reward_specs()}
    assert {"english_only", "no_say_tags", "word_count"} <= set(specs)
    assert specs["english_only"].gate and specs["no_say_tags"].gate
    assert not specs["word_count"].gate
    assert specs["word_count"].params["good_max_words"] == 6
    assert not specs["reference_fit"].gate  # the guard against stock replies, under the gates


@pytest.mark.parametrize(
    "override, path, expected",
    [
        ("trainer.learning_rate=3e-5", ("trainer", "learning_rate"), 3e-5),
        ("rollout.num_generations=4", ("rollout", "num_generations"), 4),
        ("rewards.word_count.weight=0.5", ("rewards", "word_count", "weight"), 0.5),
        ("data.prompt_format=history", ("data", "prompt_format"), "history"),
        ("data.system_prompt=Answer in English only.", ("data", "system_prompt"), "Answer in English only."),
        ("logging=none", ("logging", "backend"), "none"),
        ("data=pika", ("data", "path"), "data/pika_sft.json"),
    ],
)
def test_command_line_overrides_reach_the_config(override, path, expected):
    cfg = composed("+exp=english_only", "model=nano", override)
    for key in path:
        cfg = cfg[key] if isinstance(cfg, dict) else getattr(cfg, key)
    assert cfg == expected


def test_eval_length_follows_the_rollout_length():
    cfg = composed("+exp=english_only", "rollout.max_completion_length=40")
    assert cfg.evaluate.max_new_tokens == 40


def test_unknown_reward_is_a_clear_error():
    with pytest.raises(ConfigError, match="rewards.lang_rew_v2: unknown reward"):
        composed("+exp=english_only", "model=nano", "+rewards.lang_rew_v2.weight=1", check=True)


def test_cfg_job_prints_the_composed_config():
    out = subprocess.run(
        [sys.executable, "-m", "rl.train", "+exp=english_only", "model=nano", "--cfg", "job"],
        capture_output=True, text=True, check=True, cwd=CONF.parent,
    ).stdout
    assert "exp_name: english_only" in out
    assert "name_or_path: checkpoints/nano/base" in out


def _adapter(tmp_path: Path, base: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": base}))
    return tmp_path


def test_adapter_of_another_base_is_refused(tmp_path):
    adapter = _adapter(tmp_path, "meta-llama/Llama-3.2-1B-Instruct")
    with pytest.raises(ModelConfigError, match="base_model_name_or_path' is 'meta-llama/Llama-3.2-1B-Instruct'"):
        check_adapter_base(adapter, "Qwen/Qwen2.5-1.5B-Instruct", ["unsloth/Qwen2.5-1.5B-Instruct"])


def test_adapter_of_an_alias_or_same_path_is_accepted(tmp_path):
    check_adapter_base(_adapter(tmp_path / "a", "unsloth/Qwen2.5-1.5B-Instruct"), "Qwen/Qwen2.5-1.5B-Instruct",
                       ["unsloth/Qwen2.5-1.5B-Instruct"])
    base = tmp_path / "base"
    base.mkdir()
    check_adapter_base(_adapter(tmp_path / "b", str(base)), str(base.resolve()))


def test_missing_adapter_is_refused(tmp_path):
    with pytest.raises(ModelConfigError, match="no adapter_config.json"):
        check_adapter_base(tmp_path, "Qwen/Qwen2.5-1.5B-Instruct")


def test_wrong_sft_base_stops_training_with_one_line(tmp_path, nano):
    adapter = tmp_path / "sft"
    import shutil

    shutil.copytree(nano.sft, adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "Qwen/Qwen2.5-0.5B-Instruct"
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    result = subprocess.run(
        [sys.executable, "-m", "rl.train", "+exp=english_only", "model=nano", "logging=none",
         f"model.adapter_path={adapter}", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, cwd=CONF.parent,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "'Qwen/Qwen2.5-0.5B-Instruct' but model.name_or_path is 'checkpoints/nano/base'" in result.stderr


def test_real_job_fails_fast_when_its_judge_is_unreachable(tmp_path, nano):
    result = subprocess.run(
        [sys.executable, "-m", "rl.train", "+exp=english_only", "model=nano", "judge=vllm", "logging=none",
         "judge.base_url=http://127.0.0.1:9/v1", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, cwd=CONF.parent, timeout=300,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "127.0.0.1:9" in result.stderr and "judge.required=false" in result.stderr
    assert not list((tmp_path / "run").glob("checkpoint-*"))
