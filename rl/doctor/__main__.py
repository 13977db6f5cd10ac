"""Can this experiment start on this machine? One table: check, status, what was found, the fix.

    python -m rl.doctor +exp=english_only_box                  # the real job on the GPU box: run this first
    CUDA_VISIBLE_DEVICES=0 python -m rl.doctor +exp=english_only_1gpu
    python -m rl.doctor +exp=english_only model=nano           # the CPU face
    python -m rl.doctor --record readings.json +exp=...        # also save this machine's readings (send them to us)
    python -m rl.doctor --readings readings.json +exp=...      # judge a recorded machine instead of this one

Same overrides as `python -m rl.train`. Checks: the NVIDIA driver against the installed torch's CUDA build,
the GPUs visible, each GPU's free memory against the experiment's budget (rl/gpu_budget.py = docs/gpu.md)
and which presets (conf/exp/) fit right now, the package versions against the two known-good GPU sets,
the base model, the SFT adapter and its base, the data file, the judge, W&B's mode, the serving dir and
free disk. Exit 0 when the experiment can start (no `fail` row), 1 otherwise. Nothing is started or
downloaded; the judge gets one GET /models.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from rl.doctor import checks
from rl.doctor.checks import FAIL, OK, Row, Run
from rl.doctor.readings import LiveReader, Reader, RecordedReader, record

CONF = Path(__file__).resolve().parents[2] / "conf"
WIDTHS = {"check": 32, "status": 6, "found": 60, "fix": 56}


class ConfigProblem(Exception):
    """The overrides do not compose; one line."""


def compose(overrides: list[str]):
    """The typed config (rl.config.Config) exactly as rl.train composes and checks it: the one place the
    doctor reads the config. Paths need not exist: the checks read presets of other machines too."""
    from common.errors import UserError
    from rl.entry import compose as compose_typed

    try:
        config = compose_typed("config", [o for o in overrides if not o.startswith("hydra.")], require_paths=False)
    except UserError as err:
        raise ConfigProblem(" ".join(str(err).split())) from None
    return config


def presets() -> list[str]:
    return sorted(p.stem for p in (CONF / "exp").glob("*.yaml"))


def diagnose(overrides: list[str], reader: Reader) -> list[Row]:
    """Every row for the experiment the overrides choose."""
    name = next((o.split("=", 1)[1] for o in overrides if o.startswith(("+exp=", "exp="))), "default")
    run = Run(name, compose(overrides))
    machine = reader.machine()
    judge_row, judge_up = checks.check_judge(run, reader)
    judge_state: dict[tuple, bool] = {}

    def judge_running(preset: Run) -> bool:
        judge = preset.config.judge
        key = (judge.base_url, judge.model)
        if preset.judge_on() and key not in judge_state:
            judge_state[key] = reader.judge_problem(judge) is None
        return judge_state.get(key, False)

    rows = [checks.check_driver(run, machine), checks.check_gpus(run, machine)]
    rows += checks.check_memory(run, machine, judge_up)
    if machine.gpus() or run.needs_gpu():
        rows += checks.check_presets([Run(p, compose([f"+exp={p}"])) for p in presets()], machine, judge_running)
    sets, core = checks.install_sets()
    rows += [
        checks.check_packages(run, machine, sets, core),
        checks.check_base_model(run, machine),
        checks.check_adapter(run),
        checks.check_data(run),
        judge_row,
        checks.check_wandb(run, machine),
        checks.check_serving(run),
        checks.check_disk(run, reader),
    ]
    return rows


def table(rows: list[Row]) -> str:
    """A plain-text table; long cells wrap inside their column."""
    header = Row("check", "status", "found", "fix")
    lines = []
    for row in [header, *rows]:
        cells = {key: textwrap.wrap(str(getattr(row, key)), WIDTHS[key], break_on_hyphens=False) or [""] for key in WIDTHS}
        for i in range(max(len(c) for c in cells.values())):
            lines.append("  ".join(f"{(cells[k][i] if i < len(cells[k]) else ''):<{w}}" for k, w in WIDTHS.items()).rstrip())
        if row is header:
            lines.append("  ".join("-" * w for w in WIDTHS.values()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rl.doctor", description=__doc__.split("\n")[0],
        epilog="Overrides as for python -m rl.train, e.g. +exp=english_only_box judge.base_url=http://HOST:8001/v1",
    )  # fmt: skip
    parser.add_argument("--readings", help="judge these recorded readings (a --record file) instead of this machine")
    parser.add_argument("--record", help="also write this machine's readings to this file")
    args, overrides = parser.parse_known_args(argv)
    unknown = [o for o in overrides if o.startswith("-")]
    if unknown:
        parser.error(f"unknown option {unknown[0]}")
    try:
        reader = RecordedReader.load(args.readings) if args.readings else LiveReader()
        rows = diagnose(overrides, reader)
        if args.record:
            judge = compose(overrides).judge
            record(reader, Path(args.record), judge if judge.enabled else None)
    except ConfigProblem as err:
        print(f"error: config: {err}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as err:
        print(f"error: --readings {args.readings}: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print(table(rows))
    failed = [row.check for row in rows if row.status == FAIL]
    if failed:
        print(f"\n{len(failed)} failed ({', '.join(failed)}): this experiment cannot start here yet")
        return 1
    print(f"\nno check failed: the experiment can start ({sum(r.status != OK for r in rows)} warnings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
