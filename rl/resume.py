"""What `resume=true` continues from: the newest checkpoint that is complete and loads, and the saved
evaluation of the SFT policy when it is intact.

A kill while the trainer saves leaves a checkpoint folder without its last files (trainer_state.json is
written last), and a full disk or a bad copy leaves truncated ones. Such a checkpoint is skipped, with
the reason in the log, and never deleted: the newest one before it is used. A checkpoint counts when
trainer_state.json parses and names its step, the adapter passes rl.adapter_files' checks (every tensor
reads), and optimizer.pt, scheduler.pt and any rng_state*.pth are intact zip archives (torch.save's
format; every member's CRC is checked, nothing is unpickled).
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from pathlib import Path

from common.atomic_write import write_json_atomic
from rl.adapter_files import EVAL_KEY, AdapterError, check_adapter, content_hash

log = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
REQUIRED_STATE = ("optimizer.pt", "scheduler.pt")


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every checkpoint-N folder, newest first."""
    found = []
    for path in Path(run_dir).iterdir() if Path(run_dir).is_dir() else []:
        match = _CHECKPOINT.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def checkpoint_problem(folder: Path, step: int) -> str | None:
    """Why `folder` cannot be resumed from (one line), or None when it is complete and loads."""
    state_file = folder / "trainer_state.json"
    try:
        state = json.loads(state_file.read_text())
    except FileNotFoundError:
        return "no trainer_state.json (the save did not finish)"
    except (OSError, ValueError) as err:
        return f"trainer_state.json unreadable ({' '.join(str(err).split())})"
    if not isinstance(state, dict) or state.get("global_step") != step:
        got = state.get("global_step") if isinstance(state, dict) else state
        return f"trainer_state.json: field 'global_step' is {got!r}, expected {step}"
    try:
        check_adapter(folder)
    except AdapterError as err:
        return str(err).removeprefix(f"{folder}/")
    archives = [folder / name for name in REQUIRED_STATE] + sorted(folder.glob("rng_state*.pth"))
    for path in archives:
        if not path.is_file():
            return f"no {path.name} (the save did not finish)"
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (OSError, zipfile.BadZipFile) as err:
            return f"{path.name} unreadable ({' '.join(str(err).split())})"
        if bad is not None:
            return f"{path.name}: member {bad!r} is corrupt"
    return None


def pick_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint of `run_dir` that is complete and loads; each newer one is named in the log
    with why it is skipped (and left on disk). None when there is none."""
    skipped = 0
    for step, folder in checkpoints(run_dir):
        problem = checkpoint_problem(folder, step)
        if problem is None:
            if skipped:
                log.warning("resume: continuing from %s, the newest complete checkpoint", folder.name)
            return folder
        skipped += 1
        log.warning("resume: skipping %s: %s (left as it is)", folder, problem)
    if skipped:
        log.warning("resume: none of the %d checkpoints in %s is complete: starting from the SFT adapter",
                    skipped, run_dir)
    return None


# ---------------------------------------------------------------- the saved "before" evaluation


def load_before(path: Path, sft_adapter: Path) -> tuple[dict, list] | None:
    """(metrics, rows) saved by an earlier start of this run, when intact and of this SFT adapter."""
    if not Path(path).exists():
        return None
    try:
        saved = json.loads(Path(path).read_text())
        metrics, rows = saved["metrics"], saved["rows"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("%s unreadable (%s): evaluating the SFT adapter again", path, " ".join(str(err).split()))
        return None
    if not isinstance(metrics, dict) or metrics.get(EVAL_KEY) != content_hash(sft_adapter):
        log.warning("%s is not an evaluation of %s (as it is now): evaluating it again", path, sft_adapter)
        return None
    return metrics, rows


def save_before(path: Path, metrics: dict, rows: list) -> None:
    write_json_atomic(path, {"metrics": metrics, "rows": rows}, indent=None)
