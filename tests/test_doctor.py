"""`python -m rl.doctor`: recorded readings of the users' box (tests/data/doctor/), and this CPU machine itself.

Configs come from the doctor's own `compose` (what it checks), not tests/composed.py."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rl import gpu_budget
from rl.doctor.__main__ import compose, diagnose, main, table
from rl.doctor.checks import FAIL, OK, WARN, check_packages, install_sets, Run
from rl.doctor.readings import RecordedReader

REPO = Path(__file__).resolve().parents[1]
BOX = REPO / "tests" / "data" / "doctor"
DEMO = "data.path=data/demo/pika_demo.jsonl"


@pytest.fixture
def sft_adapter(tmp_path):
    """A PEFT adapter dir trained on the real job's base (what checkpoints/sft holds on the box)."""
    adapter = tmp_path / "sft"
    adapter.mkdir()
    config = {"peft_type": "LORA", "base_model_name_or_path": "Qwen/Qwen2.5-1.5B-Instruct", "r": 16, "lora_alpha": 32,
              "lora_dropout": 0.05, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}  # fmt: skip
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    return f"model.adapter_path={adapter}"


def box(name: str, judge_up: bool | None = None, free_mib: dict[int, int] | None = None, **env) -> RecordedReader:
    reader = RecordedReader.load(BOX / name)
    reader.readings = copy.deepcopy(reader.readings)
    if judge_up is not None:
        reader.judge = None if judge_up else "judge unreachable at http://127.0.0.1:8001/v1/models: [Errno 111] Connection refused"
    if free_mib:
        lines = []
        for line in reader.readings.nvidia_smi.splitlines():
            parts = line.split(", ")
            if int(parts[0]) in free_mib:
                parts[4] = str(free_mib[int(parts[0])])
                parts[3] = str(24576 - 317 - free_mib[int(parts[0])])
            lines.append(", ".join(parts))
        reader.readings.nvidia_smi = "\n".join(lines) + "\n"
    for key, value in env.items():
        if value is None:
            reader.readings.env.pop(key, None)
        else:
            reader.readings.env[key] = value
    return reader


def rows_by_check(rows):
    return {row.check: row for row in rows}


def test_users_box_with_the_cuda13_build_fails_with_both_fixes(sft_adapter):
    rows = rows_by_check(diagnose(["+exp=english_only_box", DEMO, sft_adapter], box("box_cu13.json", judge_up=True)))
    driver = rows["driver"]
    assert driver.status == FAIL
    assert "530.41.03" in driver.found and "CUDA 13.0" in driver.found and ">= 580.65.06" in driver.found
    assert '.[gpu-cu12]' in driver.fix and "upgrade the driver to >= 580.65.06" in driver.fix
    assert [r.check for r in rows.values() if r.status == FAIL] == ["driver"]


def test_users_box_with_the_cuda12_build_can_start(sft_adapter, capsys):
    reader = box("box_cu12.json")
    rows = rows_by_check(diagnose(["+exp=english_only_box", DEMO, sft_adapter], reader))
    assert rows["driver"].status == OK and "minor-version compatibility" in rows["driver"].found
    assert rows["packages"].status == OK and ".[gpu-cu12]" in rows["packages"].found
    assert rows["judge"].status == OK
    assert not [r for r in rows.values() if r.status == FAIL], table(list(rows.values()))
    # the judge is up on GPU 1, so its memory is already taken: only GPU 0 is budgeted
    assert [c for c in rows if c.startswith("memory")] == ["memory GPU 0"]
    assert "needs 14.3 GiB" in rows["memory GPU 0"].found
    # the CLI: same rows, exit 0
    recorded = BOX / "box_cu12.json"
    assert main(["--readings", str(recorded), "+exp=english_only_box", DEMO, sft_adapter]) == 0
    assert "no check failed" in capsys.readouterr().out


def test_gpu2_with_7_5_gib_free_marks_the_presets_that_need_it(sft_adapter):
    reader = box("box_cu12.json", judge_up=False, free_mib={2: 7680})
    rows = rows_by_check(diagnose(["+exp=english_only_1gpu", DEMO, sft_adapter], reader))
    presets = {check.removeprefix("preset "): row for check, row in rows.items() if check.startswith("preset ")}
    assert set(presets) == {p.stem for p in (REPO / "conf" / "exp").glob("*.yaml")}
    not_fitting = {name for name, row in presets.items() if row.status != OK}
    # 3gpu trains on GPU 2 (8.1 GiB); 3gpu_lora puts the judge's server there (0.90 of the card)
    assert not_fitting == {"english_only_3gpu", "english_only_3gpu_lora"}
    for name in not_fitting:
        assert "does not fit now: GPU 2" in presets[name].found and "7.5 of 24.0 free" in presets[name].found
    # choosing one of them fails on that GPU's memory row
    chosen = rows_by_check(diagnose(["+exp=english_only_3gpu", DEMO, sft_adapter], reader))
    assert chosen["memory GPU 2"].status == FAIL and chosen["memory GPU 1"].status == OK
    assert chosen["memory GPU 0"].status == OK  # the vLLM server: 0.85 x 24 = 20.4 GiB of 23.7


def test_judge_not_started_is_counted_and_its_command_given(sft_adapter):
    rows = rows_by_check(diagnose(["+exp=english_only_box", DEMO, sft_adapter], box("box_cu12.json", judge_up=False,
                                                                                     free_mib={1: 21359})))  # fmt: skip
    assert rows["judge"].status == FAIL
    assert rows["judge"].fix == (
        "start the judge: CUDA_VISIBLE_DEVICES=1 vllm serve Qwen/Qwen2.5-7B-Instruct-AWQ --quantization awq_marlin "
        "--dtype float16 --gpu-memory-utilization 0.4 --max-model-len 4096 --max-num-seqs 64 --host 127.0.0.1 --port 8001"
    )
    assert rows["memory GPU 1"].status == OK and "needs 9.6 GiB, 20.9 of 24.0 free" in rows["memory GPU 1"].found
    lenient = rows_by_check(diagnose(["+exp=english_only_box", DEMO, sft_adapter, "judge.required=false"],
                                     box("box_cu12.json", judge_up=False)))  # fmt: skip
    assert lenient["judge"].status == WARN


def test_one_process_seeing_three_gpus_fails_for_a_one_gpu_preset(sft_adapter):
    reader = box("box_cu12.json", CUDA_VISIBLE_DEVICES=None)
    reader.readings.torch.device_count = 3
    rows = rows_by_check(diagnose(["+exp=english_only_1gpu", DEMO, sft_adapter], reader))
    assert rows["GPUs"].status == FAIL and "CUDA_VISIBLE_DEVICES=0 python -m rl.train +exp=english_only_1gpu" in rows["GPUs"].fix
    # the launcher presets pick their GPUs themselves
    rows = rows_by_check(diagnose(["+exp=english_only_3gpu", DEMO, sft_adapter], reader))
    assert rows["GPUs"].status == OK


def test_a_cpu_build_on_the_box_points_at_the_extra_the_driver_runs(sft_adapter):
    reader = box("box_cu12.json")
    reader.readings.torch.version, reader.readings.torch.cuda, reader.readings.torch.cuda_available = "2.13.0+cpu", None, False
    rows = rows_by_check(diagnose(["+exp=english_only_box", DEMO, sft_adapter], reader))
    assert rows["driver"].status == FAIL and '.[gpu-cu12]' in rows["driver"].fix


@pytest.mark.parametrize(
    ("overrides", "packages", "status", "says"),
    [
        (["+exp=english_only_3gpu"], {"trl": "1.15.0", "vllm": "0.19.1"}, FAIL, "needs vLLM >= 0.21"),
        (["+exp=english_only_1gpu"], {"trl": "1.13.0"}, FAIL, "outside the project's bounds: trl 1.13.0"),
        (["+exp=english_only_1gpu"], {"vllm": None}, FAIL, "rollout=vllm_colocate needs vLLM"),
        (["+exp=english_only_1gpu"], {"torch": "2.13.0"}, WARN, "torch 2.13.0 (pinned 2.10.0)"),
        (["+exp=english_only_1gpu"], {}, OK, "the known-good set .[gpu-cu12]"),
    ],
)
def test_package_sets(overrides, packages, status, says):
    reader = box("box_cu12.json")
    reader.readings.packages.update(packages)
    sets, core = install_sets()
    row = check_packages(Run("x", compose([*overrides])), reader.machine(), sets, core)
    assert row.status == status and says in row.found, row


def test_the_nano_job_can_start_before_its_model_is_built(tmp_path):
    """A newcomer runs the doctor first: the nano model is built on first use, so no config.json yet must not
    read as an unknown model that needs a GPU."""
    unbuilt = [f"model.name_or_path={tmp_path}/nano/base", f"model.adapter_path={tmp_path}/nano/sft"]
    rows = rows_by_check(diagnose(["+exp=english_only", "model=nano", *unbuilt], box("box_cpu.json")))
    assert all(row.status != FAIL for row in rows.values()), rows
    assert "built on first use" in rows["base model"].found


def test_this_cpu_machine_nano_starts_real_job_does_not(tmp_path):
    recorded = tmp_path / "readings.json"
    nano = subprocess.run([sys.executable, "-m", "rl.doctor", "--record", str(recorded), "+exp=english_only", "model=nano"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)  # fmt: skip
    assert nano.returncode == 0, nano.stdout + nano.stderr
    assert "no check failed" in nano.stdout and "Traceback" not in nano.stderr
    # the recorded readings replay to the same table
    replayed = table(diagnose(["+exp=english_only", "model=nano"], RecordedReader.load(recorded)))
    assert replayed == nano.stdout.split("\n\n")[0]
    assert "WANDB_API_KEY" not in recorded.read_text() or '"set"' in recorded.read_text()

    real = subprocess.run([sys.executable, "-m", "rl.doctor", "+exp=english_only", "judge.base_url=http://127.0.0.1:9/v1"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)  # fmt: skip
    assert real.returncode == 1 and "Traceback" not in real.stderr, real.stderr
    failed = {line.split()[0] for line in real.stdout.splitlines() if "  fail  " in line}
    assert {"driver", "GPUs", "SFT", "data", "judge"} <= failed, real.stdout
    assert "cannot start here" in real.stdout.splitlines()[-1]


def test_bad_override_is_one_line(capsys):
    assert main(["+exp=no_such_preset"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: config:") and "no_such_preset" in err[0]


# ---- the budget of docs/gpu.md, as code ----
def test_budget_of_the_one_gpu_preset_is_the_one_in_docs():
    shape = gpu_budget.train_shape(compose(["+exp=english_only_1gpu"]))
    assert round(shape.model.params() / 1e6, 1) == 1543.7  # Qwen2.5-1.5B-Instruct
    assert round(shape.model.lora_params(16, shape.lora_targets) / 1e6, 2) == 18.46
    (need,) = gpu_budget.plan(compose(["+exp=english_only_1gpu"]))
    sizes = {item.what.split(" (")[0].split(" 16x")[0]: round(item.size(24.0), 2) for item in need.items}
    assert sizes["weights bf16"] == 2.88 and sizes["vLLM colocated"] == 7.2
    assert round(need.gib(24.0), 1) == 14.3
    docs = (REPO / "docs" / "gpu.md").read_text()
    assert "| **total** | **14.3 of 24" in docs  # docs/gpu.md quotes the code's figure


def test_budget_formulas_count_a_real_model(nano):
    """The shape arithmetic against real PyTorch modules: the nano Qwen2 and its SFT LoRA."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    shape = gpu_budget.model_shape(str(nano.base))
    model = AutoModelForCausalLM.from_pretrained(str(nano.base))
    assert shape.params() == sum(p.numel() for p in model.parameters())
    sft = json.loads((Path(nano.sft) / "adapter_config.json").read_text())
    lora = load_file(str(Path(nano.sft) / "adapter_model.safetensors"))
    assert shape.lora_params(sft["r"], sft["target_modules"]) == sum(t.numel() for t in lora.values())


def test_every_preset_has_a_budget_and_places_each_gpu():
    for preset in sorted(p.stem for p in (REPO / "conf" / "exp").glob("*.yaml")):
        needs = gpu_budget.plan(compose([f"+exp={preset}"]), visible="0")
        assert needs and all(n.gpu.isdigit() and n.gib(24.0) > 3 for n in needs), preset


@pytest.mark.parametrize(
    ("env", "status", "says"),
    [
        ({}, OK, "offline"),
        ({"WANDB_API_KEY": "set"}, OK, "online (WANDB_API_KEY is set (not shown))"),
        ({"WANDB_API_KEY": "set", "WANDB_MODE": "offline"}, OK, "offline"),
        ({"WANDB_MODE": "disabled"}, OK, "disabled (WANDB_MODE=disabled)"),
        ({"WANDB_MODE": "sometimes"}, FAIL, "WANDB_MODE: expected online, offline or disabled"),
    ],
)
def test_wandb_mode_is_what_training_will_do(env, status, says):
    from rl.doctor.checks import check_wandb

    reader = box("box_cu12.json")
    reader.readings.env = env
    row = check_wandb(Run("x", compose(["+exp=english_only_1gpu"])), reader.machine())
    assert row.status == status and says in row.found, row
