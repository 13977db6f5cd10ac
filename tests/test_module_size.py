"""Issue 15: small modules. A product module over about 300 lines says why in its first lines."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 300
MODULES = sorted(p for package in ("rl", "rewards", "common") for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_long_module_says_why_in_its_first_lines(path):
    lines = path.read_text().splitlines()
    if len(lines) <= LIMIT:
        return
    head = "\n".join(lines[:6])
    assert "Long because:" in head, f"{path.relative_to(ROOT)}: {len(lines)} lines and no 'Long because:' reason"


def test_the_size_rule_sees_the_modules():
    assert len(MODULES) > 40 and any(len(p.read_text().splitlines()) > LIMIT for p in MODULES)
