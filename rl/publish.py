"""Publish a trained LoRA adapter to the serving directory that a running vLLM serves it from.

    python -m rl.publish adapter=checkpoints/english_only/<time>/adapter            # serving/fastresponse
    python -m rl.publish adapter=PATH model=nano serving.dir=DIR serving.name=fastresponse \
        serving.reload_url=http://127.0.0.1:8000                                       # + tell vLLM
    python -m rl.publish rollback serving.dir=DIR serving.name=fastresponse           # previous version

What a publish does, in order (nothing is written before step 3):
1. validates the adapter (rl/adapter_files.py): a LoRA config, weights that parse with every tensor
   read and finite, names and shapes that fit the rank, the target modules and (when its config.json
   is on this machine) the base model; its base is `model.name_or_path` or an alias; no symlinks;
2. finds the evaluation of exactly this adapter, by content hash (weights, config, tokenizer): the
   adapter folder's eval.json, its run dir's (whose "after" entry is the run's adapter/, never a
   checkpoint) or an rl.evaluate report under `serving.evaluations`; refuses when there is none (saying
   how to evaluate it) or it is below `serving.gate` (default: english_rate >= 0.99, tag_rate <= 0,
   word_ok_rate >= 0.98, over n >= 100 held-out prompts; the report names the experiment's word limits,
   rl/rules.py). `serving.force=true` skips this step only:
   loudly, and the manifest says `forced: true`;
3. copies what a server reads (config, weights, tokenizer files) into a staging folder, fsyncs it and
   names it `DIR/.versions/NAME/vN`, with `base_model_name_or_path` rewritten to `serving.base_model`
   (exactly the `--model` argument of the serving vLLM: its filesystem resolver compares the two) and
   a `manifest.json` (base model, source run, git commit, the evaluation, sha256 of every file);
4. links `DIR/NAME-vN`; with `serving.reload_url`, has the server load vN under NAME (vLLM caches an
   adapter by name once loaded); then switches `DIR/NAME` to vN, the one step that makes it served.
A failure at any step undoes vN and says which step failed and what serves; a publish killed half-way
is undone by the next publish or rollback (a journal, `.pending.json`). See rl/serving.py for the layout.
Start vLLM with `VLLM_PLUGINS=lora_filesystem_resolver VLLM_LORA_RESOLVER_CACHE_DIR=DIR
VLLM_ALLOW_RUNTIME_LORA_UPDATING=true ... --enable-lora --max-loras K` (K above the adapters in use).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from common.errors import UserError
from common.retry import GaveUp, Retryable, RetryPolicy, retry_call
from rl import adapter_files, serving
from rl.adapter_files import AdapterError
from rl.rules import ReplyRules, rules_from

log = logging.getLogger("rl.publish")

DEFAULT_GATE = {"english_rate": {"min": 0.99}, "tag_rate": {"max": 0.0}, "word_ok_rate": {"min": 0.98},
                "n": {"min": 100}}
EVAL_HASH_KEY = adapter_files.EVAL_KEY  # what an evaluation records of the adapter it evaluated
CONF_MODELS = Path(__file__).resolve().parents[1] / "conf" / "model"
# A name ending in -vN would collide with the per-version names of another adapter.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VERSIONED_RE = re.compile(r"-v\d+$")
RELOAD_ATTEMPTS = 5
RELOAD_TIMEOUT_S = 60.0  # one load may read a large adapter from disk


class PublishError(UserError, ValueError):
    """A publish or rollback that cannot go ahead; the message is one line and says why."""


class GateRefused(PublishError):
    """The evaluation is below the gate."""


class ReloadError(PublishError):
    """The files are published but the running server did not take the new version."""


# ---------------------------------------------------------------- the gate


def gate_failures(metrics: dict, gate: dict, rules: ReplyRules | None = None) -> list[str]:
    """`gate` = {metric: {"min": x} and/or {"max": y}} -> the failing checks, e.g. 'english_rate 0.95 < 0.99'.
    `rules`: the experiment's (rl.rules), to say which word counts word_ok_rate counts ('word_ok_rate
    (1-4 words) 0.95 < 0.98'); None when the publish has no experiment to say it."""
    failures = []
    for metric, bounds in gate.items():
        if not isinstance(bounds, dict) or not bounds or set(bounds) - {"min", "max"}:
            raise PublishError(f"serving.gate.{metric}: expected {{min: X}} and/or {{max: Y}}, got {bounds!r}")
        value = metrics.get(metric)
        label = f"{metric} ({rules.words})" if rules is not None and metric == "word_ok_rate" else metric
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            failures.append(f"{label} missing (got {value!r})")
            continue
        if "min" in bounds and value < bounds["min"]:
            failures.append(f"{label} {value:.4g} < {bounds['min']:g}")
        if "max" in bounds and value > bounds["max"]:
            failures.append(f"{label} {value:.4g} > {bounds['max']:g}")
    return failures


def evaluations_in(path: Path) -> list[dict]:
    """The metrics entries of an eval.json: {"before": m, "after": m} (a training run), {"adapter": m}
    (rl.evaluate with compare_sft=false), or one flat metrics dict."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise PublishError(f"{path}: cannot read the evaluation ({_one_line(err)})") from None
    if not isinstance(data, dict) or not data:
        raise PublishError(f"{path}: expected {{\"after\": {{\"english_rate\": ...}}}}, got {type(data).__name__}")
    if EVAL_HASH_KEY in data or any(k in data for k in DEFAULT_GATE):
        return [data]
    for key, value in data.items():
        if not isinstance(value, dict):
            raise PublishError(f"{path}: field '{key}': expected a metrics object, got {value!r}")
    return list(data.values())


def find_evaluation(adapter_dir: Path, digest: str, eval_path=None, eval_dirs=()) -> tuple[dict | None, Path | None, list[str]]:
    """The evaluation of exactly this adapter (its content hash): (metrics, file, where it looked).

    With `eval_path` only that file; else the adapter folder's eval.json, its parent's (a run dir: its
    "after" entry is the run's adapter/, never a checkpoint) and rl.evaluate's reports under each of
    `eval_dirs` (newest first). A file only counts through an entry whose adapter_sha256 is `digest`."""
    if eval_path is not None:
        candidates, searched = [Path(eval_path)], [str(eval_path)]
        if not candidates[0].is_file():
            raise PublishError(f"eval={eval_path}: no such file")
    else:
        near = [adapter_dir / "eval.json", adapter_dir.parent / "eval.json"]
        reports = [p for d in eval_dirs for p in Path(d).glob("*/eval.json")]
        reports.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        candidates = [*near, *reports]
        searched = [str(p) for p in near] + [f"{d}/*/eval.json" for d in eval_dirs]
    for candidate in candidates:
        if not candidate.is_file():
            continue
        try:
            entries = evaluations_in(candidate)
        except PublishError:
            if candidate in candidates[:2] or eval_path is not None:
                raise
            log.warning("skipping %s: not a readable evaluation", candidate)
            continue
        for entry in entries:
            if entry.get(EVAL_HASH_KEY) == digest:
                return entry, candidate, searched
    return None, None, searched


# ---------------------------------------------------------------- what may be published


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name) or _VERSIONED_RE.search(name):
        raise PublishError(
            f"serving.name: {name!r} is not a valid adapter name (letters, digits, '.', '_', '-', "
            "not starting with '.', not ending in -vN)"
        )


def _same_model(a: str, b: str) -> bool:
    if a == b:
        return True
    # local paths may be written relative or absolute
    pa, pb = Path(a), Path(b)
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


def model_group_for(base: str) -> str | None:
    """The conf/model/ group whose model.name_or_path is `base` (e.g. 'nano'), for a message that says
    which `model=` the adapter belongs to."""
    from omegaconf import OmegaConf

    for path in sorted(CONF_MODELS.glob("*.yaml")):
        try:
            name_or_path = OmegaConf.load(path).get("model", {}).get("name_or_path")
        except Exception:  # a broken group file is the config's business, not this message's
            continue
        if isinstance(name_or_path, str) and _same_model(name_or_path, base):
            return path.stem
    return None


def _check_base(config_file: Path, adapter_base, accepted: list[str]) -> None:
    """The adapter must be trained on the configured model (or an alias of it): its LoRA deltas mean
    nothing on another base, and vLLM's resolver would serve it once its base is rewritten."""
    if isinstance(adapter_base, str) and any(_same_model(adapter_base, a) for a in accepted):
        return
    group = model_group_for(adapter_base) if isinstance(adapter_base, str) else None
    hint = (
        f"it was trained on the {group} model: publish it with model={group}" if group
        else "publish it with the model it was trained on, or add that base to model.base_aliases"
    )  # fmt: skip
    raise PublishError(
        f"{config_file}: field 'base_model_name_or_path' is {adapter_base!r} but this publish is for "
        f"{accepted[0]!r}" + (f" (or {', '.join(map(repr, accepted[1:]))})" if accepted[1:] else "") + f"; {hint}"
    )


def validate(adapter_dir: Path, base_model: str, trained_on: str | None = None, aliases=()) -> dict:
    """Everything about the adapter itself that must hold before anything is staged; returns its config.
    Raises PublishError (one line, naming the file)."""
    adapter_dir = Path(adapter_dir)
    accepted = [m for m in dict.fromkeys([trained_on, *aliases, base_model]) if m]
    try:
        if not adapter_dir.is_dir():
            raise AdapterError(f"{adapter_dir}: adapter folder not found")
        adapter_files.refuse_symlinks(adapter_dir)
        config = adapter_files.read_config(adapter_dir)
        _check_base(adapter_dir / adapter_files.CONFIG, config.get("base_model_name_or_path"), accepted)
        base_dir = next(filter(None, map(adapter_files.local_model_config_dir, accepted)), None)
        if base_dir is None:
            log.info("no config.json of %s on this machine: LoRA shapes checked against the rank only", accepted[0])
        adapter_files.check_adapter(adapter_dir, base_dir)
    except AdapterError as err:
        raise PublishError(str(err)) from None
    return config


# ---------------------------------------------------------------- publish / rollback


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
            text=True, timeout=10, check=True,
        )  # fmt: skip
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _serves(serving_dir: Path, name: str, version: int | None) -> str:
    if version is None:
        return f"nothing is published under {name!r}"
    return f"{serving_dir / name} still points at v{version}"


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
    *,
    trained_on: str | None = None,
    aliases=(),
    eval_dirs=(),
    evaluate_hint: str = "python -m rl.evaluate +exp=english_only adapter={adapter}",
    reload_attempts: int = RELOAD_ATTEMPTS,
    on_step: Callable[[str], None] | None = None,
    rules: ReplyRules | None = None,
) -> Path:
    """Publish `adapter_dir` as the next version of `name` in `serving_dir`; returns the version folder.

    base_model: the serving vLLM's `--model` argument (written into adapter_config.json).
    trained_on, aliases: the model the adapter must be trained on (model.name_or_path, base_aliases);
      base_model itself is always accepted (republishing a published entry).
    metrics: the evaluation to gate on, carrying the adapter_sha256 it evaluated (what rl.train passes);
      None: the evaluation of this adapter found by `find_evaluation` (eval_path, eval_dirs).
    server_dir: the serving dir as the vLLM server sees it (when it runs elsewhere); default serving_dir.
    on_step: called with each step's name (copy, fsync, rename, link, reload, switch) before it runs:
      a test seam for failures and kills at every step.
    rules: the experiment's rl.rules.ReplyRules: the gate's report and the manifest name its word limits.
    Raises GateRefused (nothing written) or PublishError/ReloadError with a one-line message; after a
    failure the serving dir is exactly as it was (the previous version still served).
    """
    adapter_dir, serving_dir = Path(adapter_dir), Path(serving_dir)
    _check_name(name)
    if not base_model or not isinstance(base_model, str):
        raise PublishError("serving.base_model: not set (the serving vLLM's --model argument)")
    source = adapter_dir.resolve() if adapter_dir.is_symlink() else adapter_dir  # a published entry
    adapter_config = validate(source, base_model, trained_on, aliases)
    gate = DEFAULT_GATE if gate is None else gate
    digest = adapter_files.content_hash(source)

    # ---- the evaluation of exactly this adapter, and the gate ----
    evaluation_file, unmatched = None, None
    if metrics is not None:
        if metrics.get(EVAL_HASH_KEY) != digest:
            unmatched = (f"the evaluation given is of another adapter ({EVAL_HASH_KEY} "
                         f"{str(metrics.get(EVAL_HASH_KEY))[:12]}, this one is {digest[:12]})")
    else:
        metrics, evaluation_file, searched = find_evaluation(adapter_dir, digest, eval_path, eval_dirs)
        if metrics is None:
            unmatched = (f"no evaluation of this adapter (content sha256 {digest[:12]}) in {', '.join(searched)}; "
                         f"evaluate it first: {evaluate_hint.format(adapter=adapter_dir)}")
        else:
            source_run = source_run or evaluation_file.parent
    failures = [unmatched] if unmatched else gate_failures(metrics, gate, rules)
    if failures and not force:
        raise GateRefused(
            f"refusing to publish {adapter_dir}: {'' if unmatched else 'below the gate: '}"
            f"{'; '.join(failures)} (serving.force=true publishes anyway)"
        )
    if force:
        log.warning("FORCED PUBLISH (serving.force=true) of %s: %s; the manifest records forced: true",
                    adapter_dir, "; ".join(failures) if failures else "the gate passed anyway")

    # ---- stage, then swap in ----
    def rewrite(rel: str, data: bytes) -> bytes:
        if rel != adapter_files.CONFIG:
            return data
        config = json.loads(data)
        config["base_model_name_or_path"] = base_model
        return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()

    def manifest(version: int, source_dir, files: dict[str, str], adopted: bool = False) -> dict:
        if adopted:  # served before this tool: kept to roll back to, never gated
            return {**manifest(version, source_dir, files), "adapter_sha256": None, "evaluation": None,
                    "metrics": None, "forced": True, "source_run": None,
                    "gate_failures": [f"adopted: a plain folder found at {source_dir}, not evaluated"]}
        return {
            "name": name,
            "version": version,
            "served_as": [name, serving.version_name(name, version)],
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "base_model": base_model,
            "base_model_path": adapter_config.get("base_model_name_or_path"),
            "source_adapter": str(Path(source_dir).resolve()),
            "source_run": str(Path(source_run).resolve()) if source_run else None,
            "git_commit": _git_commit(),
            EVAL_HASH_KEY: digest,
            "evaluation": str(Path(evaluation_file).resolve()) if evaluation_file else None,
            "metrics": metrics,
            "gate": gate,
            "word_limits": list(rules.word_limits) if rules is not None else None,
            "gate_failures": failures,
            "forced": bool(force),
            "files": files,
        }

    files = adapter_files.server_files(source)
    left_out = sorted(p.name for p in source.iterdir() if p.name not in files)
    if left_out:
        log.info("not copied (a server does not need them): %s", ", ".join(left_out))
    try:
        serving_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PublishError(f"publishing {adapter_dir}: cannot create the serving dir {serving_dir}: {_one_line(err)}") from None
    with serving.locked(serving_dir, name) as folder:
        _recover(serving_dir, name, folder)
        previous = serving.current_version(serving_dir, name)
        version = max(serving.list_versions(serving_dir, name), default=0) + 1
        # A hand-copied plain folder at DIR/NAME becomes a version first, so it can be rolled back to.
        plain = serving_dir / name
        try:
            if serving.adopt_plain_dir(serving_dir, name, version, lambda f: manifest(version, plain, f, adopted=True)):
                log.info("kept the plain folder %s as version %d", plain, version)
                previous, version = version, version + 1
        except OSError as err:
            raise PublishError(f"publishing {adapter_dir}: keeping the plain folder {plain} as a version failed: "
                               f"{_one_line(err)}") from None
        target = _swap_in(serving_dir, name, source, files, folder, version, previous, rewrite,
                          lambda f: manifest(version, source, f), reload_url, server_dir, reload_attempts,
                          on_step, what=f"publishing {adapter_dir} to {serving_dir / name}")
    log.info("published %s as %s and %s -> %s", adapter_dir, name, serving.version_name(name, version), target)
    return target


def _swap_in(serving_dir, name, source, files, folder, version, previous, rewrite, manifest, reload_url,
             server_dir, reload_attempts, on_step, what) -> Path:
    """Stage version N, then make it DIR/NAME; every failure undoes N. Caller holds the lock.

    Order: copy -> fsync -> (journal) rename to vN -> link DIR/NAME-vN -> reload the server -> switch
    DIR/NAME. DIR/NAME changes last (one atomic os.replace), so a failure or a kill at any step before
    it leaves the previous version where it was; the journal lets the next publish undo vN after a kill."""
    staging = None
    named = reloaded = False
    try:
        staging, hashes = serving.copy_files(source, files, folder, version, rewrite, on_step)
        serving.write_manifest(staging, manifest(hashes))
        serving.sync_tree(staging, on_step)
        with serving.step("rename", f"recording the publish of v{version} in {folder / serving.PENDING}"):
            serving.write_pending(folder, {"version": version, "previous": previous, "reload_url": None})
        target = serving.name_version(staging, folder, version, on_step)
        named, staging = True, None
        versioned = serving_dir / serving.version_name(name, version)
        with serving.step("link", f"linking {versioned} -> {target}", on_step):
            serving.point(versioned, target)
        if reload_url:
            serving.write_pending(folder, {"version": version, "previous": previous, "reload_url": reload_url,
                                           "server_dir": str(server_dir) if server_dir else None})
            if on_step is not None:
                on_step("reload")
            reloaded = True
            reload_adapter(reload_url, name, _as_server_sees(target, serving_dir, server_dir), reload_attempts)
        with serving.step("switch", f"pointing {serving_dir / name} at v{version}", on_step):
            serving.point(serving_dir / name, target)
        serving.clear_pending(folder)
        return target
    except (serving.StepFailed, ReloadError, OSError) as err:
        reason = str(err) if isinstance(err, (serving.StepFailed, ReloadError)) else f"{_one_line(err)}"
        state = _undo(serving_dir, name, folder, version, previous, staging, named,
                      reload_url if reloaded else None, server_dir)
        cls = ReloadError if isinstance(err, ReloadError) else PublishError
        raise cls(f"{what}: {reason}; {state}") from None
    except BaseException:  # Ctrl-C, a test seam's exception: undo the same way, then let it through
        _undo(serving_dir, name, folder, version, previous, staging, named, reload_url if reloaded else None,
              server_dir)
        raise


def _undo(serving_dir, name, folder, version, previous, staging, named, reload_url, server_dir) -> str:
    """Put everything back as before version N; returns what serves now, for the message."""
    problems = []
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)
    try:
        if previous is not None and serving.current_version(serving_dir, name) != previous:
            serving.point(serving_dir / name, serving.versions_dir(serving_dir, name) / f"v{previous}")
        if named:
            serving.undo_version(serving_dir, name, version)
        serving.clear_pending(folder)
    except OSError as err:
        problems.append(f"undoing v{version} failed too ({_one_line(err)}): the next publish removes it")
    state = f"nothing changed: {_serves(serving_dir, name, previous)}"
    if reload_url:
        state += "; " + _restore_server(serving_dir, name, previous, reload_url, server_dir)
    return "; ".join([state, *problems])


def _restore_server(serving_dir, name, previous, reload_url, server_dir) -> str:
    """After a reload that did not go through: put the previous version back on the server (one try)."""
    try:
        if previous is None:
            _unload(reload_url, name)
            return f"the server at {reload_url} has {name!r} unloaded"
        path = serving.versions_dir(serving_dir, name) / f"v{previous}"
        reload_adapter(reload_url, name, _as_server_sees(path, serving_dir, server_dir), attempts=1)
        return f"the server at {reload_url} serves v{previous} again"
    except Exception as err:  # the server is the unreliable party here
        return (f"the server at {reload_url} did not take v{previous} back either ({_one_line(err)[:120]}): "
                f"it serves {name!r} from {serving_dir / name} once it resolves the name again")


def _recover(serving_dir: Path, name: str, folder: Path) -> None:
    """Undo the version of a publish that was killed before DIR/NAME pointed at it (see the journal)."""
    record = serving.read_pending(folder)
    if record is None:
        return
    version = record.get("version")
    if isinstance(version, int) and serving.current_version(serving_dir, name) != version:
        serving.undo_version(serving_dir, name, version)
        log.warning("removed v%d of %s: the publish that made it stopped before serving it", version, name)
        if record.get("reload_url"):
            log.warning("%s", _restore_server(serving_dir, name, record.get("previous"), record["reload_url"],
                                              record.get("server_dir")))
    serving.clear_pending(folder)


def rollback(serving_dir, name: str, reload_url: str | None = None, server_dir=None,
             reload_attempts: int = RELOAD_ATTEMPTS) -> Path:
    """Point NAME back at the newest version older than the current one (checked against its manifest).
    With reload_url the server takes it first; when it does not, nothing changes."""
    serving_dir = Path(serving_dir)
    _check_name(name)
    with serving.locked(serving_dir, name) as folder:
        _recover(serving_dir, name, folder)
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
        if reload_url:
            try:
                reload_adapter(reload_url, name, _as_server_sees(previous, serving_dir, server_dir), reload_attempts)
            except ReloadError as err:
                state = _restore_server(serving_dir, name, current, reload_url, server_dir)
                raise ReloadError(f"rollback of {name!r}: {err}; nothing changed: "
                                  f"{_serves(serving_dir, name, current)}; {state}") from None
        serving.switch_to(serving_dir, name, older[-1])
    log.info("rolled %s back from v%d to v%d", name, current, older[-1])
    return previous


def _as_server_sees(version_dir: Path, serving_dir: Path, server_dir) -> str:
    if server_dir is None:
        return str(Path(version_dir).resolve())
    return str(Path(server_dir) / Path(version_dir).relative_to(serving_dir))


# ---------------------------------------------------------------- the running server


def reload_adapter(reload_url: str, name: str, lora_path: str, attempts: int = RELOAD_ATTEMPTS) -> None:
    """Make the vLLM server at reload_url serve `lora_path` under `name`.

    Unload, then load from the version's own folder: a new path (and a new LoRA id) means vLLM's prefix
    cache, keyed by (name, path), cannot hand out blocks computed with the old weights. Retried with
    backoff on connection errors and 5xx; bounded by `attempts`.
    """
    import httpx

    base = reload_url.rstrip("/").removesuffix("/v1")

    def attempt() -> None:
        try:
            with httpx.Client(timeout=RELOAD_TIMEOUT_S) as client:
                unload = client.post(f"{base}/v1/unload_lora_adapter", json={"lora_name": name})
                if unload.status_code not in (200, 404):  # 404: not loaded yet, fine
                    raise Retryable(f"POST {base}/v1/unload_lora_adapter -> {unload.status_code}: {_short(unload.text)}")
                load = client.post(f"{base}/v1/load_lora_adapter", json={"lora_name": name, "lora_path": lora_path})
        except httpx.HTTPError as err:
            raise Retryable(str(err) or type(err).__name__) from None
        if load.status_code != 200:
            # 400 "already been loaded": a request re-resolved the name between our two calls; go again
            raise Retryable(f"POST {base}/v1/load_lora_adapter -> {load.status_code}: {_short(load.text)}")

    def warn(n: int, reason: str, _delay: float) -> None:
        log.warning("reload of %s failed (attempt %d/%d): %s", name, n, attempts, reason)

    try:
        retry_call(attempt, RetryPolicy(attempts=attempts, backoff_s=1.0, max_backoff_s=8.0), on_retry=warn)
    except GaveUp as err:
        raise ReloadError(f"reload of {name!r} at {base} failed after {attempts} attempts: {_short(err.reason)}") from None
    log.info("server %s now serves %s from %s", base, name, lora_path)


def _unload(reload_url: str, name: str) -> None:
    import httpx

    base = reload_url.rstrip("/").removesuffix("/v1")
    httpx.post(f"{base}/v1/unload_lora_adapter", json={"lora_name": name}, timeout=RELOAD_TIMEOUT_S)


def _short(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


# ---------------------------------------------------------------- config / CLI


def publish_from_config(config, adapter_dir, metrics: dict | None = None, source_run=None,
                        eval_path=None, on_step: Callable[[str], None] | None = None) -> Path:
    """`publish` with the `serving:` and `model:` groups of the config (rl.config.Config); what rl.train
    calls at the end and the CLI runs. The only place a publish reads the config."""
    opts, model = config.serving, config.model
    trained_on = model.name_or_path
    group = model_group_for(trained_on) if trained_on else None
    hint = (f"python -m rl.evaluate +exp={_experiment_of(Path(adapter_dir), config)} adapter={{adapter}}"
            + (f" model={group}" if group else ""))
    gate = {metric: {k: v for k, v in vars(bound).items() if v is not None} for metric, bound in opts.gate.items()}
    # the experiment's word limits, when the config names one (rl.publish without +exp=... has no rewards)
    rules = rules_from(config.reward_specs()) if config.rewards else None
    return publish(
        adapter_dir, opts.dir, opts.name, opts.base_model, metrics=metrics, gate=gate, force=opts.force,
        reload_url=opts.reload_url, source_run=source_run, eval_path=eval_path, server_dir=opts.server_dir,
        trained_on=trained_on, aliases=model.base_aliases, eval_dirs=opts.evaluations, evaluate_hint=hint,
        on_step=on_step, rules=rules,
    )  # fmt: skip


def _experiment_of(adapter_dir: Path, config) -> str:
    """The experiment an adapter was trained in (its run dir's config), for the rl.evaluate command."""
    from omegaconf import OmegaConf

    for resolved in (adapter_dir.parent / "config.resolved.yaml", adapter_dir / "config.resolved.yaml"):
        try:
            name = OmegaConf.load(resolved).get("exp_name")
        except Exception:  # no run config next to it: fall back below
            continue
        if isinstance(name, str) and name != "default":
            return name
    return config.exp_name if config.exp_name != "default" else "english_only"


def _job(command: str):
    def job(config, run_dir) -> None:
        opts = config.serving
        try:
            if command == "rollback":
                path = rollback(opts.dir, opts.name, opts.reload_url, opts.server_dir)
                print(f"rolled back: {opts.name} -> {path}")
                return
            if not config.adapter:
                raise PublishError("adapter: required, not set (pass adapter=PATH, the adapter folder to publish)")
            path = publish_from_config(config, config.adapter, eval_path=config.eval)
        except OSError as err:  # the serving dir is not writable, a disk is full: the user's to fix
            raise PublishError(_one_line(err)) from None
        print(f"published: {opts.name} -> {path}")

    return job


def main(argv: list[str] | None = None) -> None:
    """`rollback` is a bare word before the Hydra overrides; take it off argv before Hydra parses it."""
    from rl.entry import hydra_cli

    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args and args[0] in ("publish", "rollback") else "publish"
    sys.argv = [sys.argv[0], *args]
    # a publish reads serving.* and the adapter, not the training data or the SFT adapter
    hydra_cli("publish_cli", _job(command), require_paths=False)


if __name__ == "__main__":
    main()
