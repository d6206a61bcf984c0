"""Where things are, from the repository's root, so that a test module reads the same files wherever in
``tests/`` it lives."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ARTIFACTS", "DATA", "DOCS", "ROOT", "TESTS", "VENDOR", "WEB"]

ROOT = Path(__file__).resolve().parents[2]
"""The repository's root."""
TESTS = ROOT / "tests"
DATA = TESTS / "data"
"""Recorded inputs the tests read (ADS-B samples...)."""
VENDOR = TESTS / "vendor"
"""Test-only third-party files (axe-core), never served by the service."""
ARTIFACTS = TESTS / "artifacts"
"""Where screenshots go (not committed)."""
WEB = ROOT / "src" / "deconflict" / "web"
"""The page's files, as the service ships them."""
DOCS = ROOT / "docs"
