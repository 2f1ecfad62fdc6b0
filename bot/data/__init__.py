"""The demo's sample history: small real cuts of Netflix's Top 10 files (see SOURCE.md here)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# In import order: the U.S. daily chart, the weekly country charts, the weekly global charts.
SAMPLES = ("us_daily_sample.csv", "countries_sample.tsv", "global_sample.tsv")


def sample_files() -> list[Path]:
    """Paths of the shipped samples, in import order (the package must be installed unzipped)."""
    root = resources.files(__name__)
    return [Path(str(root.joinpath(name))) for name in SAMPLES]
