"""Bundled demo mechanisms."""

from __future__ import annotations

from pathlib import Path

SCENARIOS = Path(__file__).parent


def scenario_path(name: str) -> Path:
    """Path of a bundled mechanism file, for example ``scenario_path("syria")``."""
    return SCENARIOS / f"{name}.toml"
