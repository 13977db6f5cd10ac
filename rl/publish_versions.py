"""Publish and rollback in the serving dir: stage version N, swap it in, undo it on any failure.

The order of the steps and what each guarantees: rl/publish.py's docstring; the layout: rl/serving.py.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Callable

from rl import adapter_files, serving
from rl.publish_checks import PublishError, check_name, one_line, validate
from rl.publish_gate import DEFAULT_GATE, EVAL_HASH_KEY, GateRefused, find_evaluation, gate_failures
from rl.rules import ReplyRules
from rl.serving_reload import RELOAD_ATTEMPTS, ReloadError, reload_adapter, unload

log = logging.getLogger("rl.publish")  # one logger for every step of a publish


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
    check_name(name)
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
        raise PublishError(f"publishing {adapter_dir}: cannot create the serving dir {serving_dir}: {one_line(err)}") from None
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
                               f"{one_line(err)}") from None
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
        reason = str(err) if isinstance(err, (serving.StepFailed, ReloadError)) else f"{one_line(err)}"
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
        problems.append(f"undoing v{version} failed too ({one_line(err)}): the next publish removes it")
    state = f"nothing changed: {_serves(serving_dir, name, previous)}"
    if reload_url:
        state += "; " + _restore_server(serving_dir, name, previous, reload_url, server_dir)
    return "; ".join([state, *problems])


def _restore_server(serving_dir, name, previous, reload_url, server_dir) -> str:
    """After a reload that did not go through: put the previous version back on the server (one try)."""
    try:
        if previous is None:
            unload(reload_url, name)
            return f"the server at {reload_url} has {name!r} unloaded"
        path = serving.versions_dir(serving_dir, name) / f"v{previous}"
        reload_adapter(reload_url, name, _as_server_sees(path, serving_dir, server_dir), attempts=1)
        return f"the server at {reload_url} serves v{previous} again"
    except Exception as err:  # the server is the unreliable party here
        return (f"the server at {reload_url} did not take v{previous} back either ({one_line(err)[:120]}): "
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
    check_name(name)
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
