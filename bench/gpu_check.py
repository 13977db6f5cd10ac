"""The prepared GPU check: does the training loop run on this CUDA machine, how fast, in how much memory?

    python -m bench.gpu_check                        # any CUDA machine, no internet, at most ~8 minutes
    python -m bench.gpu_check --out DIR              # also DIR/gpu_check.md + .json (record it in docs/gpu.md)
    python -m bench.gpu_check --cpu --steps 2        # the same driver on a CPU (what CI runs): phase 1 only
    bash scripts/gpu_check.sh ...                    # the same, with the small dependencies carried as wheels

Phases, each in its own process with its own time limit (a crash or a hang is a row, not the end):
1. `hf`: the nano job on CUDA in bf16 with transformers' generate (rollout=hf), `--steps` GRPO steps
   (default 40), the held-out evaluation before and after;
2. `vllm_colocate`: the same with TRL's in-process vLLM (when vllm imports), fewer steps;
3. `unsloth`: model.backend=unsloth (when unsloth imports), fewer steps.
The table: what ran, steps, median step time (TRL's step_time after the first step), peak GPU memory
(torch's max reserved), held-out reward / English rate before -> after, the error if any. Exit 0 when
every phase that could run passed (phases whose package is missing are "skipped"), 1 otherwise. The nano
model is built on first use (about 4 minutes on one core) unless checkpoints/nano/ came along.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE = ["+exp=english_only", "model=nano", "logging=none", "trainer.save_steps=100000", "trainer.log_completions=false",
        "evaluate.n=128"]  # fmt: skip


@dataclass
class Phase:
    name: str
    overrides: list[str]
    needs: str | None  # the package that must import; None: only CUDA (or --cpu)
    steps_share: float  # of --steps
    timeout_s: int


PHASES = [
    Phase("hf", ["rollout=hf", "model.dtype=bfloat16"], None, 1.0, 180),
    Phase("vllm_colocate", ["rollout=vllm_colocate", "model.dtype=bfloat16", "rollout.vllm.gpu_memory_utilization=0.2"],
          "vllm", 0.5, 240),
    Phase("unsloth", ["rollout=hf", "model.backend=unsloth", "model.dtype=bfloat16", "++model.unsloth.max_seq_length=560",
                      "++model.unsloth.fast_inference=false"], "unsloth", 0.5, 200),  # fmt: skip
]
CPU_OVERRIDES = ["model.dtype=float32", "evaluate.n=16"]  # --cpu: the nano job as CI runs it


@dataclass
class Result:
    phase: str
    status: str  # passed | failed | skipped
    steps: int = 0
    step_s: float | None = None  # median TRL step_time after the first step
    peak_gib: float | None = None  # torch.cuda.max_memory_reserved
    before: dict = field(default_factory=dict)  # held-out reward_mean / english_rate
    after: dict = field(default_factory=dict)
    wall_s: float | None = None
    error: str = ""


# ---- one phase, in a child process ----
def run_phase(name: str, steps: int, cpu: bool, out: Path) -> None:
    """Train the phase in this process; write its Result as JSON (also on failure)."""
    phase = next(p for p in PHASES if p.name == name)
    result = Result(phase.name, "failed")
    started = time.monotonic()
    try:
        import torch

        from rl.entry import compose
        from rl.train import train

        overrides = [*BASE, *phase.overrides, f"trainer.max_steps={steps}"] + (CPU_OVERRIDES if cpu else [])
        config = compose("config", overrides)  # typed and checked, as `python -m rl.train` composes it
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        with tempfile.TemporaryDirectory(prefix=f"gpu_check_{name}_") as tmp:
            run_dir = Path(tmp) / "run"
            results = train(config, run_dir)
            state = json.loads(next(run_dir.glob("checkpoint-*/trainer_state.json")).read_text())
        times = [h["step_time"] for h in state["log_history"] if "step_time" in h][1:]
        result.steps = sum(1 for h in state["log_history"] if "step_time" in h)
        result.step_s = statistics.median(times) if times else None
        if torch.cuda.is_available():
            result.peak_gib = torch.cuda.max_memory_reserved() / 1024**3
        keys = ("reward_mean", "english_rate")
        result.before = {k: results["before"][k] for k in keys if k in results.get("before", {})}
        result.after = {k: results["after"][k] for k in keys if k in results.get("after", {})}
        result.status = "passed"
    except BaseException as err:  # noqa: BLE001 - any failure is the finding; SystemExit from rl.train too
        result.error = f"{type(err).__name__}: {' '.join(str(err).split())}"[:300]
    result.wall_s = time.monotonic() - started
    out.write_text(json.dumps(asdict(result)))


# ---- the driver ----
def check(steps: int, cpu: bool, only: list[str] | None = None, budget_s: float = 480) -> list[Result]:
    results = []
    deadline = time.monotonic() + budget_s
    for phase in PHASES:
        if only and phase.name not in only:
            continue
        reason = skip_reason(phase, cpu)
        left = deadline - time.monotonic()
        if reason is None and left < 30:
            reason = "out of the check's time budget"
        if reason:
            results.append(Result(phase.name, "skipped", error=reason))
            continue
        n = max(2, round(steps * phase.steps_share))
        results.append(run_child(phase, n, cpu, timeout_s=min(phase.timeout_s, left)))
        print(row_line(results[-1]), flush=True)
    return results


def skip_reason(phase: Phase, cpu: bool) -> str | None:
    if cpu:
        return None if phase.needs is None else "--cpu: GPU-only phase"
    if phase.needs and importlib.util.find_spec(phase.needs) is None:
        return f"{phase.needs} not installed"
    return None


def run_child(phase: Phase, steps: int, cpu: bool, timeout_s: float) -> Result:
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "bench.gpu_check", "--phase", phase.name, "--steps", str(steps), "--result", str(out)]
        if cpu:
            cmd.append("--cpu")
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "WANDB_MODE": "disabled"}
        started = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return Result(phase.name, "failed", wall_s=time.monotonic() - started, error=f"no result within {timeout_s:.0f}s")
        if out.exists():
            return Result(**json.loads(out.read_text()))
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        return Result(phase.name, "failed", wall_s=time.monotonic() - started,
                      error=f"exit {proc.returncode} without a result: {tail}"[:300])  # fmt: skip


# ---- the table ----
COLUMNS = ("phase", "status", "steps", "step time", "peak GPU", "reward before -> after", "English before -> after", "wall", "error")


def cells(r: Result) -> list[str]:
    def pair(key: str) -> str:
        if key in r.before and key in r.after:
            return f"{r.before[key]:.2f} -> {r.after[key]:.2f}"
        return "-"

    return [
        r.phase, r.status, str(r.steps) if r.steps else "-",
        f"{r.step_s:.2f} s" if r.step_s is not None else "-",
        f"{r.peak_gib:.1f} GiB" if r.peak_gib is not None else "-",
        pair("reward_mean"), pair("english_rate"),
        f"{r.wall_s:.0f} s" if r.wall_s is not None else "-", r.error or "",
    ]  # fmt: skip


def markdown(results: list[Result], machine: str) -> str:
    lines = [f"GPU check on {machine}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in cells(r)) + " |" for r in results]
    return "\n".join(lines)


def row_line(r: Result) -> str:
    return "  ".join(cells(r))


def machine_line(cpu: bool) -> str:
    try:
        import torch

        if not cpu and torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            return (f"{p.name} ({p.total_memory / 1024**3:.0f} GiB, sm_{p.major}{p.minor}), torch {torch.__version__} "
                    f"(CUDA {torch.version.cuda}), {_versions()}")  # fmt: skip
        return f"CPU, torch {torch.__version__}, {_versions()}"
    except Exception as err:  # noqa: BLE001
        return f"unknown ({err})"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("trl", "transformers", "vllm", "unsloth"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="GRPO steps of the hf phase (the others: half)")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (GPU-only phases are skipped)")
    parser.add_argument("--only", nargs="*", choices=[p.name for p in PHASES], help="run only these phases")
    parser.add_argument("--budget-s", type=float, default=480, help="the whole check's time limit")
    parser.add_argument("--out", type=Path, help="write gpu_check.md and gpu_check.json here")
    parser.add_argument("--phase", help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        run_phase(args.phase, args.steps, args.cpu, args.result)
        return 0
    if not args.cpu:
        import torch

        if not torch.cuda.is_available():
            print("error: no CUDA GPU visible to torch (python -m rl.doctor says why); --cpu runs the CPU face",
                  file=sys.stderr)  # fmt: skip
            return 1
    machine = machine_line(args.cpu)
    print(f"GPU check on {machine}\n" + "  ".join(COLUMNS), flush=True)
    results = check(args.steps, args.cpu, args.only, args.budget_s)
    table = markdown(results, machine)
    print("\n" + table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.md").write_text(table + "\n")
        (args.out / "gpu_check.json").write_text(json.dumps({"machine": machine, "results": [asdict(r) for r in results]}, indent=2))
    return 0 if all(r.status != "failed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
