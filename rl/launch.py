"""Start the vLLM server a rollout backend needs, train against it, and always stop it.

    python -m rl.launch +exp=english_only rollout=vllm_server        # trl vllm-serve on GPU 0, training on 1,2
    python -m rl.launch +exp=english_only rollout=vllm_lora          # vLLM --enable-lora on GPU 0, training on 1
    python -m rl.launch +exp=english_only rollout=vllm_lora rollout.server.train_gpus=1,2
    python -m rl.launch ... launch.dry_run=true                      # print both commands, start nothing

Takes the same overrides as `python -m rl.train`. The server is started from the composed config
(`model.name_or_path`, `rollout.server.*`) in its own process group with `CUDA_VISIBLE_DEVICES=server.gpus`,
its log in `<run dir>/vllm_server.log`; `GET /health` is polled for at most `server.health_timeout_s`
(a server that dies or never answers is one clear error with its last log lines). Training then runs
with `CUDA_VISIBLE_DEVICES=server.train_gpus` (`accelerate launch` when that names several GPUs) and the
same run dir; when it ends, fails or is interrupted (Ctrl-C, SIGTERM), the server's group is stopped.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from common.errors import UserError
from rl.rollout import max_model_length

from common.retry import GaveUp, Retryable, RetryPolicy, retry_call


class LaunchError(UserError, RuntimeError):
    """The server could not be started or never became healthy; one line plus the server's log tail."""


def main() -> None:
    from rl.entry import hydra_cli

    hydra_cli("launch", launch)


def launch(config, run_dir: Path) -> None:
    """`config`: rl.config.LaunchCli. Exits with training's exit code."""
    from hydra.core.hydra_config import HydraConfig

    overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith(("launch.", "+launch."))]
    server_cmd, server_env, base_url = server_command(config, host=config.launch.host)
    train_cmd, train_env = training_command(config, overrides, run_dir, base_url)
    if config.launch.dry_run:
        print(_shell(server_cmd, server_env))
        print(_shell(train_cmd, train_env))
        return
    try:
        code = supervise(server_cmd, server_env, base_url, train_cmd, train_env, run_dir,
                         config.rollout.server.health_timeout_s)
    except KeyboardInterrupt:  # before training started; the server is already stopped
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code)


# ---- commands ----
def server_command(config, host: str = "127.0.0.1") -> tuple[list[str], dict, str]:
    """(argv, extra env, base URL) of the vLLM server the rollout backend needs."""
    rollout = config.rollout
    backend, server = rollout.backend, rollout.server
    if backend not in ("vllm_server", "vllm_lora"):
        raise LaunchError(f"rollout={backend}: nothing to launch (rl.launch serves rollout=vllm_server or vllm_lora)")
    python = server.python or sys.executable
    model = config.model.name_or_path
    max_len = server.max_model_len or max_model_length(rollout, config.data.max_prompt_tokens)
    # no --max-model-len: the model's own context, which is what unbounded prompts are cut to
    max_len_args = [] if max_len is None else [str(max_len)]
    env = {"CUDA_VISIBLE_DEVICES": str(server.gpus)}
    if backend == "vllm_server":
        port = int(rollout.vllm.server_port or 8000)
        # `trl vllm-serve` (identical in TRL 1.15 and 1.16) execs `vllm serve` with the NCCL weight-transfer
        # engine, processed logprobs and VLLM_SERVER_DEV_MODE=1: what GRPOTrainer's server mode talks to.
        cmd = [
            python, "-m", "trl.scripts.vllm_serve",
            "--model", model,
            "--host", host, "--port", str(port),
            "--tensor_parallel_size", str(server.tensor_parallel_size),
            "--gpu_memory_utilization", str(server.gpu_memory_utilization),
            *(["--max_model_len", *max_len_args] if max_len_args else []),
            "--dtype", str(server.dtype),
        ]  # fmt: skip
        if server.enforce_eager:
            cmd += ["--enforce_eager"]
    else:
        port = _port(rollout.base_url)
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "true"
        cmd = [
            python, "-m", "vllm.entrypoints.openai.api_server",
            "--model", model,
            "--host", host, "--port", str(port),
            *(["--max-model-len", *max_len_args] if max_len_args else []),
            "--dtype", str(server.dtype),
            "--enable-lora",
            "--max-lora-rank", str(server.max_lora_rank),
            "--max-loras", str(server.max_loras),
            "--tensor-parallel-size", str(server.tensor_parallel_size),
            "--gpu-memory-utilization", str(server.gpu_memory_utilization),
        ]  # fmt: skip
        if server.enforce_eager:
            cmd += ["--enforce-eager"]
    return cmd, env, f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"


def training_command(config, overrides: list[str], run_dir: Path, base_url: str) -> tuple[list[str], dict]:
    """(argv, extra env) of `rl.train` with the same overrides, pointed at the server and the same run dir."""
    gpus = [g for g in str(config.rollout.server.train_gpus).split(",") if g.strip()]
    extra = [f"hydra.run.dir={run_dir}"]
    if config.rollout.backend == "vllm_lora":
        extra.append(f"rollout.base_url={base_url}")
    args = [o for o in overrides if not o.startswith(("hydra.run.dir=", "rollout.base_url="))] + extra
    if len(gpus) > 1:
        launcher = [
            sys.executable, "-m", "accelerate.commands.launch",
            "--multi_gpu", "--num_processes", str(len(gpus)), "--num_machines", "1",
            "--mixed_precision", "no",  # GRPOConfig(bf16=...) decides, from model.dtype
            "--dynamo_backend", "no",
            "-m", "rl.train",
        ]  # fmt: skip
    else:
        launcher = [sys.executable, "-m", "rl.train"]
    return launcher + args, {"CUDA_VISIBLE_DEVICES": ",".join(g.strip() for g in gpus)}


# ---- process supervision ----
def supervise(
    server_cmd: list[str],
    server_env: dict,
    base_url: str,
    train_cmd: list[str],
    train_env: dict,
    run_dir: Path,
    health_timeout_s: float,
) -> int:
    """Run the server, wait for health, run training; stop the server whatever happens. Returns training's code."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "vllm_server.log"
    terminated = []  # `kill` of the launcher: stop training the way Ctrl-C does, then the server

    def on_sigterm(signum, frame):
        terminated.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    server = start_server(server_cmd, server_env, log_path)
    try:
        print(f"vLLM server starting (pid {server.pid}, log {log_path})", flush=True)
        wait_for_health(base_url, server, health_timeout_s, log_path)
        print(f"vLLM server healthy at {base_url}; training: {shlex.join(train_cmd)}", flush=True)
        training = subprocess.Popen(train_cmd, env={**os.environ, **train_env})
        try:
            return training.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached training too (same process group); a SIGTERM did not: pass it on as Ctrl-C.
            # Either way training saves and exits on its own terms.
            if terminated:
                training.send_signal(signal.SIGINT)
            try:
                return training.wait(timeout=120)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                training.kill()
                return 130
    finally:
        stop_server(server)
        signal.signal(signal.SIGTERM, previous)
        print("vLLM server stopped", flush=True)


def start_server(cmd: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        try:
            return subprocess.Popen(
                cmd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: vLLM forks engine workers
            )  # fmt: skip
        except OSError as err:
            raise LaunchError(f"cannot start the vLLM server ({cmd[0]}): {err}") from None


def wait_for_health(base_url: str, server: subprocess.Popen | None, timeout_s: float, log_path: Path | None) -> float:
    """Poll GET /health until 200; returns the seconds waited. Bounded; a dead server fails at once."""
    started = time.monotonic()

    def attempt() -> None:
        if healthy(base_url):
            return
        if server is not None and server.poll() is not None:
            raise LaunchError(
                f"vLLM server exited with code {server.returncode} before it was healthy; last log lines "
                f"({log_path}):\n{log_tail(log_path)}"
            )
        raise Retryable("not healthy yet")

    try:  # one poll a second until the deadline
        retry_call(attempt, RetryPolicy(attempts=None, backoff_s=1.0, multiplier=1.0, deadline_s=timeout_s))
    except GaveUp:
        raise LaunchError(
            f"vLLM server at {base_url} not healthy after {timeout_s:.0f}s (rollout.server.health_timeout_s); "
            f"last log lines ({log_path}):\n{log_tail(log_path)}"
        ) from None
    return time.monotonic() - started


def healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop_server(server: subprocess.Popen, grace_s: float = 30) -> None:
    """SIGTERM the server's whole process group, SIGKILL what is left after `grace_s`."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            break
        try:
            server.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # the leader is gone; engine workers of the group may linger
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def log_tail(path: Path | None, lines: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except (OSError, TypeError):
        return "(no log)"


def _port(base_url: str) -> int:
    from urllib.parse import urlparse

    port = urlparse(base_url).port
    if port is None:
        raise LaunchError(f"rollout.base_url: {base_url!r} names no port")
    return port


def _shell(cmd: list[str], env: dict) -> str:
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(cmd)


if __name__ == "__main__":
    main()
