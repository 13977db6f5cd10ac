"""rl.tracking: W&B obeys WANDB_MODE; offline and disabled send nothing and read no key; a failed online
start falls back to an offline run with a fresh id, counted and logged.

Each case runs in its own process: W&B reads its environment once per process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rl.tracking import _run_id, wandb_mode

REPO = Path(__file__).resolve().parents[1]
KEY = "pikatestkey" + "7" * 40  # what must never leave the process nor land in a file
START = """
import json, logging, sys
from pathlib import Path
from rl.config import Config, LoggingConfig
from rl.tracking import start_tracking
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
tracker = start_tracking(LoggingConfig(project="pika-test", init_timeout_s=8), Path(sys.argv[1]), Config(seed=1),
                         "test/run")
run = getattr(tracker, "run", None)
print(json.dumps({"tracker": type(tracker).__name__, "fallbacks": tracker.fallbacks,
                  "id": getattr(run, "id", None), "offline": getattr(getattr(run, "settings", None), "_offline", None)}))
tracker.finish()
"""


@pytest.mark.parametrize(
    "env,mode",
    [
        ({"WANDB_MODE": "offline", "WANDB_API_KEY": KEY}, "offline"),
        ({"WANDB_MODE": "disabled", "WANDB_API_KEY": KEY}, "disabled"),
        ({"WANDB_MODE": "dryrun"}, "offline"),
        ({"WANDB_MODE": "Online"}, "online"),
        ({"WANDB_API_KEY": KEY}, "online"),
        ({}, "offline"),
        ({"WANDB_MODE": ""}, "offline"),
    ],
)
def test_wandb_mode_table(env, mode):
    assert wandb_mode(env) == mode


def test_an_unknown_mode_is_one_clear_line():
    with pytest.raises(ValueError, match="WANDB_MODE: expected online, offline or disabled, got 'ofline'"):
        wandb_mode({"WANDB_MODE": "ofline"})


class Recorder:
    """A TCP port that counts the connections made to it (a W&B host that must never be called)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def recorder():
    rec = Recorder()
    yield rec
    rec.close()


def start(run_dir: Path, **env) -> tuple[dict, str, float]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-c", START, str(run_dir)], cwd=REPO, env={**clean, **env},
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr, time.monotonic() - began


def files_holding(folder: Path, needle: str) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


@pytest.mark.parametrize("mode", ["offline", "disabled"])
def test_offline_and_disabled_send_nothing_and_keep_no_key(tmp_path, recorder, mode):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    result, logs, _ = start(run_dir, WANDB_MODE=mode, WANDB_API_KEY=KEY,
                            WANDB_BASE_URL=f"http://127.0.0.1:{recorder.port}")  # fmt: skip
    time.sleep(0.5)
    assert recorder.connections == 0, logs[-2000:]
    assert files_holding(run_dir, KEY) == [] and KEY not in logs
    if mode == "disabled":
        assert result["tracker"] == "NoTracking" and not (run_dir / "wandb").exists()
    else:
        assert result["tracker"] == "WandbTracking" and result["id"] == _run_id(run_dir)
        assert list((run_dir / "wandb").glob("offline-run-*"))


def test_a_failed_online_start_falls_back_offline_with_a_fresh_id(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    result, logs, elapsed = start(run_dir, WANDB_MODE="online", WANDB_API_KEY=KEY,
                                  WANDB_BASE_URL="http://127.0.0.1:9")  # fmt: skip
    assert result["tracker"] == "WandbTracking" and result["fallbacks"] == 1, logs[-2000:]
    assert result["id"] != _run_id(run_dir) and result["id"].startswith(_run_id(run_dir) + "-offline-")
    assert "W&B online start failed" in logs and f"logging offline instead as run {result['id']}" in logs
    assert list((run_dir / "wandb").glob(f"offline-run-*-{result['id']}"))
    assert elapsed < 90  # bounded by logging.init_timeout_s (8 s here), not W&B's own 90 s
