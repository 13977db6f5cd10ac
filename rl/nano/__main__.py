"""python -m rl.nano [--force] [--root DIR] [--data FILE]: build the nano model (see rl/nano/__init__.py)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from common.errors import interruptible
from rl.nano import BUILD_FILE, DEFAULT_DATA, DEFAULT_ROOT, ensure_nano


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rl.nano", description="Build the nano model (tiny Qwen2 + "
                                     "a leaky SFT LoRA) so the whole GRPO loop runs on a CPU in minutes.")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="where base/ and sft/ go")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="demo dataset (written if missing)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a matching build exists")
    args = parser.parse_args(argv)
    interruptible()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from rl.data import DataError

    try:
        paths = ensure_nano(args.root, force=args.force, data=args.data)
    except DataError as err:
        print(err, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: {args.root} left as it was", file=sys.stderr)
        return 130
    build = json.loads((args.root / BUILD_FILE).read_text())
    print(json.dumps({"base": str(paths.base), "sft": str(paths.sft), "data": str(paths.data),
                      "params": build["params"], "timings": build["timings"], "held_out": build["held_out"]},
                     indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
