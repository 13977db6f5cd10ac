"""Progress bars that show progress without drowning a log: a live tqdm bar on a terminal; in a pipe or a
file (CI, `> log`) tqdm cannot redraw, so every refresh would be a new line (the nano build's 1,000 steps
wrote 150 KB): there the bar refreshes at most every OFF_TERMINAL_INTERVAL_S seconds, a few lines a run."""

from __future__ import annotations

import sys

OFF_TERMINAL_INTERVAL_S = 30.0


def progress_bar(iterable=None, **kwargs):
    """tqdm over `iterable` (same keyword arguments) on stderr, quiet off a terminal."""
    from tqdm.auto import tqdm

    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", OFF_TERMINAL_INTERVAL_S)
        kwargs.setdefault("maxinterval", OFF_TERMINAL_INTERVAL_S * 2)
    return tqdm(iterable, **kwargs)
