"""The config exactly as an entry point sees it: Hydra-composed from conf/, resolved to plain dicts."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parents[1] / "conf"


def composed(*overrides: str, config_name: str = "config") -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return OmegaConf.to_container(compose(config_name=config_name, overrides=list(overrides)), resolve=True)
