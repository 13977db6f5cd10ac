"""README.md's commands, run exactly as written on the nano model, in a fresh working directory.

The commands are parsed from README.md itself (its ```bash blocks), so the test stays true to it: the
Quick start's main job, every command of "Other commands" in order, and those of "The real job" that
run without the GPU box (`--cfg job`). The main job runs once, as written (100 steps), and the other
commands use what it wrote, as a user's would. The working directory is a temp dir that holds only
`data/` and the session's nano build (`checkpoints/nano`), so the run writes nothing into the repo.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
pytestmark = pytest.mark.slow
CONSOLE_LIMIT = 20_000  # bytes of stdout + stderr for the main job (issue 15)


def readme_sections() -> dict[str, list[str]]:
    """{section title: the commands of its ```bash blocks}: one command a line, comments dropped."""
    sections: dict[str, list[str]] = {}
    title = ""
    for block_or_title in re.finditer(r"^## ([^\n]+)$|^```bash\n(.*?)^```", README.read_text(), re.M | re.S):
        if block_or_title.group(1):
            title = block_or_title.group(1).strip()
            continue
        for line in block_or_title.group(2).splitlines():
            command = line.split("  #")[0].strip()
            if command:
                sections.setdefault(title, []).append(command)
    return sections


def section(prefix: str) -> list[str]:
    found = [commands for title, commands in readme_sections().items() if title.startswith(prefix)]
    assert found, f"README.md has no section starting with {prefix!r}"
    return found[0]


def main_job() -> str:
    jobs = [c for c in section("Quick start") if c.startswith("python -m rl.train")]
    assert len(jobs) == 1, jobs
    return jobs[0]


def run(command: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    args = shlex.split(command)
    env_prefix = {}
    while args and re.fullmatch(r"[A-Z_]+=.*", args[0]):  # VAR=value before the command
        key, value = args.pop(0).split("=", 1)
        env_prefix[key] = value
    assert args[0] == "python", f"not a python command: {command}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}  # as a user's shell: no key, offline
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", **env_prefix)
    return subprocess.run([sys.executable, *args[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def fresh(nano, tmp_path_factory):
    """A working directory like a fresh clone after setup (data + the nano build), and the main job run in it."""
    workdir = tmp_path_factory.mktemp("fresh_clone")
    (workdir / "data").symlink_to(REPO / "data")
    (workdir / "checkpoints").mkdir()
    (workdir / "checkpoints" / "nano").symlink_to(Path(nano.base).resolve().parent)
    result = run(main_job(), workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir, result


def test_the_readme_shows_the_commands_this_test_runs():
    assert main_job() == "python -m rl.train +exp=english_only model=nano"
    others = section("Other commands")
    assert len(others) >= 5 and all(c.startswith("python -m rl.") for c in others), others
    assert any(" rollback" in c for c in others), "rollback is documented"


def test_main_job_console_is_short_and_ends_with_where_everything_went(fresh):
    workdir, result = fresh
    console = result.stdout + result.stderr
    assert len(console.encode()) < CONSOLE_LIMIT, f"{len(console.encode())} bytes"
    assert "{'loss'" not in console and "'grad_norm'" not in console  # TRL's raw dicts stay off the console
    assert "URL not available" not in console
    run_dir = (workdir / "checkpoints" / "english_only" / "latest").resolve()
    assert run_dir.parent == workdir / "checkpoints" / "english_only" and run_dir.name != "latest"
    lines = result.stdout.rstrip().splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("run dir: "))
    tail = lines[start:]
    assert tail[0] == f"run dir: {run_dir}" and all(line.startswith("  ") for line in tail[1:]), tail
    assert any(f"wandb sync {run_dir}/wandb/offline-run-" in line for line in tail), tail
    assert sum(line.startswith("step ") for line in result.stdout.splitlines()) == 100
    assert "step 1: {'loss'" in (run_dir / "train.log").read_text()  # the full dict went to the log file


def test_main_job_writes_a_real_adapter_card(fresh):
    workdir, _ = fresh
    run_dir = workdir / "checkpoints" / "english_only" / "latest"
    card = (run_dir / "README.md").read_text()
    assert "fine-tuned version of [None]" not in card and "time machine" not in card
    for needed in ("checkpoints/nano/base", "checkpoints/nano/sft", "data/demo/pika_demo.jsonl", "`english_only`",
                   "GRPO steps | 100 of 100", "before (SFT)", "after (GRPO)", "vllm serve", "python -m rl.publish"):
        assert needed in card, needed
    assert (run_dir / "adapter" / "README.md").read_text() == card


def test_other_commands_work_as_written_in_order(fresh):
    workdir, _ = fresh
    for command in section("Other commands"):
        result = run(command, workdir)
        assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
    assert (workdir / "scored.jsonl").stat().st_size > 0
    assert list((workdir / "checkpoints" / "eval").glob("*/eval.json"))
    current = (workdir / "serving" / "fastresponse").resolve()
    assert current.name == "v1", "after the rollback the first version serves again"


def test_real_job_commands_that_need_no_gpu_work_as_written(fresh):
    workdir, _ = fresh
    cpu_ones = [c for c in section("The real job") if "--cfg" in c]
    assert cpu_ones
    for command in cpu_ones:
        result = run(command, workdir, timeout=120)
        assert result.returncode == 0 and "exp_name: english_only" in result.stdout, command + result.stderr[-2000:]


@pytest.mark.parametrize("module", ["rl.train", "rl.evaluate", "rl.publish", "rl.score", "rl.launch", "rl.data", "rl.nano",
                                    "rl.doctor"])
def test_every_cli_help_starts_with_its_own_usage(module, tmp_path):
    result = run(f"python -m {module} --help", tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    head = result.stdout.lstrip().splitlines()[:8]
    assert any(f"python -m {module}" in line for line in head), head
    assert "powered by Hydra" not in result.stdout.split("\n\n")[0]
