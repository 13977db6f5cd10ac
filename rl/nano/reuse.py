"""When the nano model is (re)built: `ensure_nano` builds only when the build is missing or stale (another
recipe, data file, split or RECIPE_VERSION), one process at a time."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rl.nano.build import build_nano
from rl.nano.recipe import BUILD_FILE, DEFAULT_DATA, DEFAULT_ROOT, NanoPaths, Recipe, Split, demo_split, fingerprint

def is_complete(root: Path) -> bool:
    """True when root holds a whole build (of any recipe or data)."""
    root = Path(root)
    needed = [root / "base" / "config.json", root / "base" / "tokenizer.json", root / "sft" / "adapter_config.json",
              root / BUILD_FILE]
    return all(p.exists() for p in needed)


def is_built(root: Path, data: Path = DEFAULT_DATA, recipe: Recipe = Recipe(), split: Split | None = None) -> bool:
    """True when root holds a complete build of this recipe, data file and split."""
    root = Path(root)
    if not is_complete(root) or not Path(data).exists():
        return False
    try:
        built = json.loads((root / BUILD_FILE).read_text())
    except json.JSONDecodeError:
        return False
    return built.get("fingerprint") == fingerprint(recipe, data, split or demo_split())


def ensure_nano(root: Path = DEFAULT_ROOT, force: bool = False, data: Path = DEFAULT_DATA,
                recipe: Recipe = Recipe(), split: Split | None = None) -> NanoPaths:
    """The nano model's paths, building it first when missing, stale (other recipe, data or split) or forced."""
    root, data, split = Path(root), Path(data), split or demo_split()
    paths = NanoPaths(base=root / "base", sft=root / "sft", data=data)
    if not force and is_built(root, data, recipe, split):
        return paths
    root.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(root):
        # another process may have finished the build while we waited for the lock
        if not force and is_built(root, data, recipe, split):
            return paths
        return build_nano(root, data, recipe, split)


class _build_lock:
    """An exclusive lock on root's parent directory (no lock file left behind), so two processes never
    build the same nano model at once."""

    def __init__(self, root: Path):
        self.path = root.parent

    def __enter__(self):
        import fcntl

        self.fd = os.open(self.path, os.O_RDONLY)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        import fcntl

        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
