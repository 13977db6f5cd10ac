"""The serving directory on disk: versioned adapters that vLLM's filesystem LoRA resolver serves by name.
Long because: the layout, the atomic switch, the lock and rollback are one on-disk protocol; each
part's safety rests on the others' order, so they are read together.

Layout (DIR = serving.dir, NAME = serving.name):

    DIR/NAME          -> .versions/NAME/v3   symlink: what a request for model=NAME gets
    DIR/NAME-v1       -> .versions/NAME/v1   every version also under its own name (never changes)
    DIR/NAME-v3       -> .versions/NAME/v3
    DIR/.versions/NAME/v1/, v2/, v3/          adapter files + manifest.json; never modified once named
    DIR/.versions/NAME/.lock                  one publisher or rollback at a time

Why a symlink: rename(2) cannot replace a non-empty directory, so "rename the new folder over the
old one" does not exist; renaming the old one away first leaves a moment with no adapter at all.
Replacing a symlink with os.replace is atomic: a reader resolving DIR/NAME gets the old complete
version or the new complete version, never a partial one (a version folder only gets its name
after every file in it is written and fsynced). Symlink targets are relative so the folder can be
mounted elsewhere (a container) and still resolve. vLLM's resolver follows the link (tested in
tests/test_publish_vllm.py).

Plain functions on paths; the gate, manifest contents and server reload live in rl/publish.py.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from common.atomic_write import fsync_dir as _fsync_dir
from common.atomic_write import write_json_atomic

VERSIONS = ".versions"
MANIFEST = "manifest.json"
_VERSION_RE = re.compile(r"^v(\d+)$")


class ServingError(RuntimeError):
    """A problem with the serving directory, reported in one line."""


def versions_dir(serving_dir: Path, name: str) -> Path:
    return Path(serving_dir) / VERSIONS / name


def version_name(name: str, version: int) -> str:
    return f"{name}-v{version}"


def list_versions(serving_dir: Path, name: str) -> list[int]:
    """Published (complete) version numbers, ascending; staging folders are not versions."""
    folder = versions_dir(serving_dir, name)
    if not folder.is_dir():
        return []
    found = (_VERSION_RE.match(p.name) for p in folder.iterdir() if p.is_dir())
    return sorted(int(m.group(1)) for m in found if m)


def current_version(serving_dir: Path, name: str) -> int | None:
    """The version DIR/NAME points to, or None when nothing is published under NAME."""
    link = Path(serving_dir) / name
    if not link.is_symlink():
        return None
    match = _VERSION_RE.match(Path(os.readlink(link)).name)
    return int(match.group(1)) if match else None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def locked(serving_dir: Path, name: str) -> Iterator[Path]:
    """Hold NAME's lock (blocking); yields its versions folder. A killed holder releases it."""
    folder = versions_dir(serving_dir, name)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_stale_staging(folder: Path) -> None:
    # Only called under the lock: a staging folder left now belongs to a publisher that died.
    for path in folder.glob(".staging-*"):
        shutil.rmtree(path, ignore_errors=True)


class StepFailed(ServingError):
    """One step of a publish failed: `step` names it (copy, fsync, rename, link, switch)."""

    def __init__(self, step: str, message: str):
        self.step = step
        super().__init__(message)


@contextmanager
def step(name: str, what: str, on_step: Callable[[str], None] | None = None) -> Iterator[None]:
    """Run one publish step: `on_step(name)` first (a test seam: it may sleep or raise), then the body;
    an OSError becomes StepFailed with `what` ("copying X into Y") and the reason."""
    try:
        if on_step is not None:
            on_step(name)
        yield
    except OSError as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise StepFailed(name, f"{what} failed: {reason}") from None


def copy_files(
    source_dir: Path,
    files: list[str],
    folder: Path,
    version: int,
    rewrite: Callable[[str, bytes], bytes],
    on_step: Callable[[str], None] | None = None,
) -> tuple[Path, dict[str, str]]:
    """Copy `files` (relative to source_dir) into a staging folder under `folder`, each through
    `rewrite(relpath, data)`; returns (staging folder, sha256 by relpath). Nothing is synced yet.
    Caller holds the lock and removes the staging folder when a later step fails."""
    _remove_stale_staging(folder)
    staging = folder / f".staging-v{version}-{os.getpid()}"
    hashes: dict[str, str] = {}
    with step("copy", f"creating {staging}"):
        staging.mkdir()
    try:
        _copy_into(staging, source_dir, files, rewrite, hashes, on_step)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging, hashes


def _copy_into(staging, source_dir, files, rewrite, hashes, on_step) -> None:
    for i, rel in enumerate(files):
        target = staging / rel
        what = f"copying {Path(source_dir) / rel} into {staging}"
        with step("copy", what):
            data = rewrite(rel, (Path(source_dir) / rel).read_bytes())
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        hashes[rel] = hashlib.sha256(data).hexdigest()
        if i == 0 and on_step is not None:
            with step("copy", what, on_step):  # the seam after the first file: a half-copied staging
                pass


def write_manifest(staging: Path, manifest: dict) -> None:
    with step("copy", f"writing {staging / MANIFEST}"):
        (staging / MANIFEST).write_bytes((json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())


def sync_tree(staging: Path, on_step: Callable[[str], None] | None = None) -> None:
    """fsync every file, then every folder, of the staging copy: a crash after the rename that names
    it a version cannot leave a version with missing bytes."""
    with step("fsync", f"syncing {staging} to disk", on_step):
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for sub in sorted({staging, *(p.parent for p in staging.rglob("*"))}, reverse=True):
            _fsync_dir(sub)


def name_version(staging: Path, folder: Path, version: int, on_step: Callable[[str], None] | None = None) -> Path:
    """Rename the complete staging copy to folder/vN (atomic: vN does not exist, the lock is held)."""
    final = folder / f"v{version}"
    with step("rename", f"naming the staged copy {final}", on_step):
        staging.rename(final)
        _fsync_dir(folder)
    return final


def stage_version(
    source_dir: Path,
    folder: Path,
    version: int,
    rewrite: Callable[[str, bytes], bytes],
    manifest: Callable[[dict[str, str]], dict],
    files: list[str] | None = None,
) -> Path:
    """Copy, sync and name a version in one go (used for adopting a plain folder): folder/vN appears
    only when complete. `files`: relative paths to copy (default: every file under source_dir)."""
    if files is None:
        files = sorted(
            p.relative_to(source_dir).as_posix() for p in Path(source_dir).rglob("*")
            if not p.is_dir() and p.name != MANIFEST
        )  # fmt: skip
    staging = None
    try:
        staging, hashes = copy_files(source_dir, files, folder, version, rewrite)
        write_manifest(staging, manifest(hashes))
        sync_tree(staging)
        return name_version(staging, folder, version)
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise


# ---------------------------------------------------------------- a publish in progress
# Written (atomically) just before a staged copy is named vN, removed once DIR/NAME points at it or
# the version is undone: a publish killed in between leaves it, and the next publish or rollback
# (under the lock) undoes that version before doing anything else.
PENDING = ".pending.json"


def write_pending(folder: Path, record: dict) -> None:
    write_json_atomic(folder / PENDING, record, sort_keys=True)


def read_pending(folder: Path) -> dict | None:
    try:
        record = json.loads((folder / PENDING).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # torn by a kill mid-write: nothing was named after it, there is nothing to undo
    return record if isinstance(record, dict) else {}


def clear_pending(folder: Path) -> None:
    (folder / PENDING).unlink(missing_ok=True)
    _fsync_dir(folder)


def undo_version(serving_dir: Path, name: str, version: int) -> None:
    """Remove version N that never became DIR/NAME: its DIR/NAME-vN link and its folder. Caller holds the lock."""
    serving_dir = Path(serving_dir)
    link = serving_dir / version_name(name, version)
    if link.is_symlink():
        link.unlink()
    folder = versions_dir(serving_dir, name) / f"v{version}"
    if folder.exists():
        retired = folder.with_name(f".staging-undo-v{version}-{os.getpid()}")
        folder.rename(retired)  # gone from the versions at once; the files go next
        shutil.rmtree(retired)
    _fsync_dir(serving_dir)
    _fsync_dir(versions_dir(serving_dir, name))


def point(link: Path, target: Path) -> None:
    """Make `link` a symlink to `target` (relative), atomically replacing an existing symlink."""
    relative = os.path.relpath(target, link.parent)
    tmp = link.parent / f".{link.name}.link-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(relative, tmp)
    os.replace(tmp, link)
    _fsync_dir(link.parent)


def switch_to(serving_dir: Path, name: str, version: int) -> Path:
    """Point DIR/NAME and DIR/NAME-vN at version N. Caller holds the lock."""
    serving_dir = Path(serving_dir)
    target = versions_dir(serving_dir, name) / f"v{version}"
    if not target.is_dir():
        raise ServingError(f"{target}: no such version")
    versioned = serving_dir / version_name(name, version)
    if not versioned.is_symlink():
        point(versioned, target)
    point(serving_dir / name, target)
    return target


def adopt_plain_dir(serving_dir: Path, name: str, version: int, manifest: Callable[[dict[str, str]], dict]) -> bool:
    """DIR/NAME as a plain folder (copied there by hand, before this tool): copy it into the versions
    as vN (with a manifest) and put the symlink in its place, so it can be rolled back to. The one
    non-atomic step: NAME is missing between moving the folder away and the symlink appearing
    (microseconds). Caller holds the lock. Returns False when there was nothing to adopt."""
    serving_dir = Path(serving_dir)
    plain = serving_dir / name
    if plain.is_symlink() or not plain.is_dir():
        return False
    folder = versions_dir(serving_dir, name)
    stage_version(plain, folder, version, lambda rel, data: data, manifest)
    retired = folder / f".staging-plain-{os.getpid()}"  # removed by the next publish if we die now
    plain.rename(retired)
    switch_to(serving_dir, name, version)
    shutil.rmtree(retired, ignore_errors=True)
    return True


def verify(version_dir: Path) -> list[str]:
    """Problems of a published version (files missing, changed or added since its manifest); [] = intact."""
    version_dir = Path(version_dir)
    try:
        expected = json.loads((version_dir / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError) as err:
        return [f"{version_dir / MANIFEST}: unreadable ({err})"]
    problems = []
    present = {p.relative_to(version_dir).as_posix() for p in version_dir.rglob("*") if not p.is_dir()}
    for rel, digest in sorted(expected.items()):
        if rel not in present:
            problems.append(f"{rel}: missing")
        elif sha256_file(version_dir / rel) != digest:
            problems.append(f"{rel}: sha256 differs from the manifest")
    problems += [f"{rel}: not in the manifest" for rel in sorted(present - set(expected) - {MANIFEST})]
    return problems
