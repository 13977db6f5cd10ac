"""What a failed run leaves: the error line in its run dir's log, and no run dir that holds nothing.

Hydra creates the run dir (its `.hydra/` config and the job's log, e.g. `train.log`) before the job
starts. When the job then fails before doing any work (a missing file, a judge that is down), that
folder holds nothing worth keeping, and a few typos would fill `checkpoints/<exp>/` with empty
timestamped folders: it is removed (the console has the error). When the run had started (checkpoints,
an evaluation, an adapter), the folder stays and its log ends with the error, so a run dir always says
how its run ended.
"""

from __future__ import annotations

import logging
import shutil
import traceback
from pathlib import Path

# what a run dir holds before any work: Hydra's record of the config, ours, and the job's log files
STARTUP_ENTRIES = {".hydra", "config.resolved.yaml"}


def _log_files(run_dir: Path) -> list[logging.FileHandler]:
    run_dir = Path(run_dir).resolve()
    return [
        h for h in logging.getLogger().handlers
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename).resolve().parent == run_dir
    ]  # fmt: skip


def record_failure(run_dir: Path, message: str, exc: BaseException | None = None) -> bool:
    """The job in `run_dir` failed with `message` (one line; `exc` adds its traceback to the log only).

    Writes the line to the run dir's log files; removes the run dir when it holds nothing but what its
    start wrote. Returns True when it was removed."""
    run_dir = Path(run_dir)
    handlers = _log_files(run_dir)
    text = f"error: {message}"
    if exc is not None:
        text += "\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    record = logging.LogRecord("rl.failed_run", logging.ERROR, __file__, 0, text, None, None)
    for handler in handlers:
        handler.handle(record)
        handler.flush()
    if not run_dir.is_dir():
        return False
    log_names = {Path(h.baseFilename).name for h in handlers}
    if {p.name for p in run_dir.iterdir()} - STARTUP_ENTRIES - log_names:
        return False  # the run had started: keep everything, the log says how it ended
    for handler in handlers:
        logging.getLogger().removeHandler(handler)
        handler.close()
    shutil.rmtree(run_dir, ignore_errors=True)
    return True
