"""Publish a trained LoRA adapter to the serving directory that a running vLLM serves it from.

    python -m rl.publish adapter=checkpoints/english_only/<time>/adapter            # serving/fastresponse
    python -m rl.publish adapter=PATH model=nano serving.dir=DIR serving.name=fastresponse \
        serving.reload_url=http://127.0.0.1:8000                                       # + tell vLLM
    python -m rl.publish rollback serving.dir=DIR serving.name=fastresponse           # previous version

What a publish does, in order:
1. reads the evaluation (`eval.json` next to the adapter: its "after" metrics, or the metrics of a
   single-adapter evaluation) and refuses, listing the failing metrics, when it is below
   `serving.gate` (default: english_rate >= 0.99, tag_rate <= 0, word_ok_rate >= 0.98), unless
   `serving.force=true`;
2. copies the adapter into `DIR/.versions/NAME/vN` (staged under a temporary name, every file
   fsynced), with `base_model_name_or_path` rewritten to `serving.base_model` (exactly the `--model`
   argument of the serving vLLM: its filesystem resolver compares the two) and a `manifest.json`
   (base model, source run, git commit, metrics, sha256 of every file, creation time, version);
3. points the symlinks `DIR/NAME` and `DIR/NAME-vN` at it (atomic; see rl/serving.py);
4. with `serving.reload_url`, unloads NAME from the server and loads the new version, because vLLM
   caches an adapter by name once loaded.
Start vLLM with `VLLM_PLUGINS=lora_filesystem_resolver VLLM_LORA_RESOLVER_CACHE_DIR=DIR
VLLM_ALLOW_RUNTIME_LORA_UPDATING=true ... --enable-lora --max-loras K` (K above the adapters in use).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import subprocess
import sys
import time
from pathlib import Path

from rl import serving

log = logging.getLogger("rl.publish")

DEFAULT_GATE = {"english_rate": {"min": 0.99}, "tag_rate": {"max": 0.0}, "word_ok_rate": {"min": 0.98}}
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
# A name ending in -vN would collide with the per-version names of another adapter.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VERSIONED_RE = re.compile(r"-v\d+$")
RELOAD_ATTEMPTS = 5
RELOAD_TIMEOUT_S = 60.0  # one load may read a large adapter from disk


class PublishError(ValueError):
    """A publish or rollback that cannot go ahead; the message is one line and says why."""


class GateRefused(PublishError):
    """The evaluation is below the gate."""


class ReloadError(PublishError):
    """The files are published but the running server did not take the new version."""


# ---------------------------------------------------------------- the gate


def gate_failures(metrics: dict, gate: dict) -> list[str]:
    """`gate` = {metric: {"min": x} and/or {"max": y}} -> the failing checks, e.g. 'english_rate 0.95 < 0.99'."""
    failures = []
    for metric, bounds in gate.items():
        if not isinstance(bounds, dict) or not bounds or set(bounds) - {"min", "max"}:
            raise PublishError(f"serving.gate.{metric}: expected {{min: X}} and/or {{max: Y}}, got {bounds!r}")
        value = metrics.get(metric)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            failures.append(f"{metric} missing (got {value!r})")
            continue
        if "min" in bounds and value < bounds["min"]:
            failures.append(f"{metric} {value:.4g} < {bounds['min']:g}")
        if "max" in bounds and value > bounds["max"]:
            failures.append(f"{metric} {value:.4g} > {bounds['max']:g}")
    return failures


def read_eval(path: Path) -> dict:
    """The metrics to gate on from an eval.json: its "after" entry (a training run), the only entry of
    a single-adapter evaluation, or the file itself when it is a flat metrics dict."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise PublishError(f"{path}: cannot read the evaluation ({err})") from None
    if isinstance(data, dict):
        if isinstance(data.get("after"), dict):
            return data["after"]
        entries = [v for v in data.values() if isinstance(v, dict)]
        if len(data) == 1 and len(entries) == 1:
            return entries[0]
        if any(k in data for k in DEFAULT_GATE):
            return data
    raise PublishError(f"{path}: field 'after': no metrics found (expected {{\"after\": {{\"english_rate\": ...}}}})")


def find_eval(adapter_dir: Path) -> Path | None:
    """eval.json next to the adapter: ADAPTER/eval.json, else the run dir's (adapter = RUN/adapter)."""
    for candidate in (adapter_dir / "eval.json", adapter_dir.parent / "eval.json"):
        if candidate.is_file():
            return candidate
    return None


# ---------------------------------------------------------------- publish / rollback


def _check_adapter(adapter_dir: Path) -> dict:
    config_file = adapter_dir / "adapter_config.json"
    if not adapter_dir.is_dir():
        raise PublishError(f"{adapter_dir}: adapter folder not found")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as err:
        raise PublishError(f"{config_file}: cannot read the adapter config ({err})") from None
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        got = config.get("peft_type") if isinstance(config, dict) else config
        raise PublishError(f"{config_file}: field 'peft_type': expected 'LORA', got {got!r}")
    if not any((adapter_dir / name).is_file() for name in WEIGHT_FILES):
        raise PublishError(f"{adapter_dir}: no adapter weights ({' or '.join(WEIGHT_FILES)})")
    return config


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name) or _VERSIONED_RE.search(name):
        raise PublishError(
            f"serving.name: {name!r} is not a valid adapter name (letters, digits, '.', '_', '-', "
            "not starting with '.', not ending in -vN)"
        )


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
            text=True, timeout=10, check=True,
        )  # fmt: skip
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def publish(
    adapter_dir,
    serving_dir,
    name: str,
    base_model: str,
    metrics: dict | None = None,
    gate: dict | None = None,
    force: bool = False,
    reload_url: str | None = None,
    source_run=None,
    eval_path=None,
    server_dir=None,
) -> Path:
    """Publish `adapter_dir` as the next version of `name` in `serving_dir`; returns the version folder.

    metrics: the evaluation to gate on; None reads `eval_path`, else eval.json found next to the adapter.
    base_model: the serving vLLM's `--model` argument (written into adapter_config.json).
    server_dir: the serving dir as the vLLM server sees it (when it runs elsewhere); default serving_dir.
    Raises GateRefused (nothing written) or PublishError/ReloadError with a one-line message.
    """
    adapter_dir, serving_dir = Path(adapter_dir), Path(serving_dir)
    _check_name(name)
    if not base_model or not isinstance(base_model, str):
        raise PublishError("serving.base_model: not set (the serving vLLM's --model argument)")
    adapter_config = _check_adapter(adapter_dir)
    gate = DEFAULT_GATE if gate is None else gate

    # ---- the evaluation and the gate ----
    if metrics is None:
        eval_path = Path(eval_path) if eval_path else find_eval(adapter_dir)
        if eval_path is not None:
            metrics = read_eval(eval_path)
            source_run = source_run or eval_path.parent
    if metrics is None:
        failures = ["no evaluation found (looked for eval.json in the adapter folder and its parent)"]
    else:
        failures = gate_failures(metrics, gate)
    if failures and not force:
        raise GateRefused(
            f"refusing to publish {adapter_dir}: below the gate: {'; '.join(failures)} "
            "(serving.force=true publishes anyway)"
        )
    if failures:
        log.warning("publishing despite the gate (serving.force=true): %s", "; ".join(failures))

    # ---- stage, then swap in ----
    def rewrite(rel: str, data: bytes) -> bytes:
        if rel != "adapter_config.json":
            return data
        config = json.loads(data)
        config["base_model_name_or_path"] = base_model
        return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()

    def manifest(version: int, source, files: dict[str, str]) -> dict:
        return {
            "name": name,
            "version": version,
            "served_as": [name, serving.version_name(name, version)],
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "base_model": base_model,
            "base_model_path": adapter_config.get("base_model_name_or_path"),
            "source_adapter": str(Path(source).resolve()),
            "source_run": str(Path(source_run).resolve()) if source_run else None,
            "git_commit": _git_commit(),
            "metrics": metrics,
            "gate": gate,
            "gate_failures": failures,
            "forced": bool(failures),
            "files": files,
        }

    try:
        serving_dir.mkdir(parents=True, exist_ok=True)
        with serving.locked(serving_dir, name) as folder:
            version = max(serving.list_versions(serving_dir, name), default=0) + 1
            # A hand-copied plain folder at DIR/NAME becomes a version first, so it can be rolled back to.
            plain = serving_dir / name
            if serving.adopt_plain_dir(serving_dir, name, version, lambda files: manifest(version, plain, files)):
                log.info("kept the plain folder %s as version %d", plain, version)
                version += 1
            target = serving.stage_version(
                adapter_dir, folder, version, rewrite, lambda files: manifest(version, adapter_dir, files)
            )
            serving.switch_to(serving_dir, name, version)
    except OSError as err:
        raise PublishError(f"publishing {adapter_dir} to {serving_dir / name}: copy failed: {err}") from None
    log.info("published %s as %s and %s -> %s", adapter_dir, name, serving.version_name(name, version), target)

    if reload_url:
        reload_adapter(reload_url, name, _as_server_sees(target, serving_dir, server_dir))
    return target


def rollback(serving_dir, name: str, reload_url: str | None = None, server_dir=None) -> Path:
    """Point NAME back at the newest version older than the current one (checked against its manifest)."""
    serving_dir = Path(serving_dir)
    _check_name(name)
    with serving.locked(serving_dir, name) as folder:
        current = serving.current_version(serving_dir, name)
        if current is None:
            raise PublishError(f"{serving_dir / name}: nothing published under {name!r} to roll back")
        older = [v for v in serving.list_versions(serving_dir, name) if v < current]
        if not older:
            raise PublishError(f"{serving_dir / name}: at its first version v{current}, nothing to roll back to")
        previous = folder / f"v{older[-1]}"
        problems = serving.verify(previous)
        if problems:
            raise PublishError(f"{previous}: does not match its manifest: {'; '.join(problems)}")
        serving.switch_to(serving_dir, name, older[-1])
    log.info("rolled %s back from v%d to v%d", name, current, older[-1])
    if reload_url:
        reload_adapter(reload_url, name, _as_server_sees(previous, serving_dir, server_dir))
    return previous


def _as_server_sees(version_dir: Path, serving_dir: Path, server_dir) -> str:
    if server_dir is None:
        return str(version_dir.resolve())
    return str(Path(server_dir) / version_dir.relative_to(serving_dir))


# ---------------------------------------------------------------- the running server


def reload_adapter(reload_url: str, name: str, lora_path: str, attempts: int = RELOAD_ATTEMPTS) -> None:
    """Make the vLLM server at reload_url serve `lora_path` under `name`.

    Unload, then load from the version's own folder: a new path (and a new LoRA id) means vLLM's prefix
    cache, keyed by (name, path), cannot hand out blocks computed with the old weights. Retried with
    backoff on connection errors and 5xx; bounded by `attempts`.
    """
    import httpx

    base = reload_url.rstrip("/").removesuffix("/v1")
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            with httpx.Client(timeout=RELOAD_TIMEOUT_S) as client:
                unload = client.post(f"{base}/v1/unload_lora_adapter", json={"lora_name": name})
                if unload.status_code not in (200, 404):  # 404: not loaded yet, fine
                    raise _Retry(f"POST {base}/v1/unload_lora_adapter -> {unload.status_code}: {_short(unload.text)}")
                load = client.post(f"{base}/v1/load_lora_adapter", json={"lora_name": name, "lora_path": lora_path})
                if load.status_code == 200:
                    log.info("server %s now serves %s from %s", base, name, lora_path)
                    return
                # 400 "already been loaded": a request re-resolved the name between our two calls; go again
                raise _Retry(f"POST {base}/v1/load_lora_adapter -> {load.status_code}: {_short(load.text)}")
        except (httpx.HTTPError, _Retry) as err:
            last = str(err) or type(err).__name__
        if attempt < attempts:
            log.warning("reload of %s failed (attempt %d/%d): %s", name, attempt, attempts, last)
            time.sleep(min(2 ** (attempt - 1), 8))
    raise ReloadError(
        f"reload of {name!r} at {base} failed after {attempts} attempts: {last} "
        f"(the files are published at {lora_path}; the server may still serve the previous version)"
    )


class _Retry(Exception):
    pass


def _short(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


# ---------------------------------------------------------------- config / CLI


def publish_from_config(config: dict, adapter_dir, metrics: dict | None = None, source_run=None,
                        eval_path=None) -> Path:
    """`publish` with the `serving:` block of the (plain-dict) config; what rl.train calls at the end."""
    opts = config.get("serving") or {}
    return publish(
        adapter_dir, opts.get("dir", "serving"), opts.get("name", "fastresponse"), opts.get("base_model"),
        metrics=metrics, gate=opts.get("gate"), force=bool(opts.get("force", False)),
        reload_url=opts.get("reload_url"), source_run=source_run, eval_path=eval_path,
        server_dir=opts.get("server_dir"),
    )  # fmt: skip


_command = "publish"


def _hydra_entry():
    import hydra
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    @hydra.main(config_path="../conf", config_name="publish_cli", version_base="1.3")
    def run(cfg: DictConfig) -> None:
        try:
            if _command == "publish" and OmegaConf.is_missing(cfg, "adapter"):
                raise PublishError("adapter=PATH is required (the adapter folder to publish)")
            # only what a publish reads is resolved: the rest of the config is the training run's business
            opts = OmegaConf.to_container(cfg.serving, resolve=True)
            if _command == "rollback":
                path = rollback(opts["dir"], opts["name"], opts.get("reload_url"), opts.get("server_dir"))
                print(f"rolled back: {opts['name']} -> {path}")
            else:
                path = publish_from_config({"serving": opts}, cfg.adapter, eval_path=cfg.get("eval"))
                print(f"published: {opts['name']} -> {path}")
        except (PublishError, OmegaConfBaseException, OSError) as err:
            print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
            sys.exit(1)

    return run


def main(argv: list[str] | None = None) -> None:
    """`rollback` is a bare word before the Hydra overrides; take it off argv before Hydra parses it."""
    global _command
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("publish", "rollback"):
        _command = args.pop(0)
    sys.argv = [sys.argv[0], *args]
    _hydra_entry()()


if __name__ == "__main__":
    main()
