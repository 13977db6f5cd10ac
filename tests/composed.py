"""The config exactly as an entry point sees it: Hydra-composed from conf/ into the typed dataclasses."""

from __future__ import annotations

from rl.config import Config
from rl.entry import compose


def composed(*overrides: str, config_name: str = "config", check: bool = False) -> Config:
    """The typed config; `check=True` also applies the value rules (paths included), as the CLI does."""
    return compose(config_name, list(overrides), check_values=check)
