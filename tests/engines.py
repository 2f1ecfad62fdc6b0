"""The store's engines, for tests that run on each: `@both_engines` (or `pytestmark = both_engines`)
parametrises the `engine` fixture of tests/conftest.py, and every database fixture follows it."""

from __future__ import annotations

import pytest

ENGINES = ("sqlite", "postgresql")
both_engines = pytest.mark.parametrize("engine", ENGINES, indirect=True)
