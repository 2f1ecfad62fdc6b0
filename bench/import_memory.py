"""Memory and speed of `chartbot import` on a large generic CSV (not a test).

Writes a generic-format CSV (`date,region,category,rank,title`) of about `--mb` megabytes in a
temporary folder — 95 regions × 3 categories × as many days as it takes, ranks 1..10, a pool of
titles that are released, climb, linger and fade, so thousands of distinct titles — then runs
`chartbot import` on it in a child process and prints the file's size, the wall time, entries per
second and the child's peak resident memory (its own `ru_maxrss`, from `wait4`).

    python bench/import_memory.py [--mb 200] [--keep FILE] [--file FILE]

`--keep FILE` writes the CSV there and keeps it; `--file FILE` imports an existing file instead of
writing one (to compare two versions of the code on the same file).
Target: peak RSS ≤ 500 MB for a 200 MB file; entries/s not worse than before streaming.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REGION_COUNT = 95
CATEGORIES = ("tv", "movies", "overall")
START = date(2019, 1, 1)
POOL = 30  # titles in the running per category on any day
RELEASES = 3  # new titles per category per day

WORDS = (
    "The",
    "Last",
    "Night",
    "Summer",
    "Kingdom",
    "Shadow",
    "Secret",
    "House",
    "Love",
    "Island",
    "Queen",
    "Crown",
    "Dark",
    "River",
    "Wild",
    "City",
    "Blood",
    "Stranger",
    "Hidden",
    "Empire",
    "Broken",
    "Silent",
    "Game",
    "Heart",
    "Ocean",
    "Winter",
    "Lost",
    "Fire",
    "Golden",
    "Road",
    "Dream",
    "Glass",
    "Storm",
    "Garden",
    "Midnight",
    "Little",
    "Black",
    "White",
    "Red",
    "Devil",
    "Angel",
    "War",
    "Hunter",
    "Promise",
    "Letters",
    "Sky",
    "Paper",
    "Bridge",
    "Memory",
    "Ghost",
    "Sisters",
    "Brothers",
    "Family",
    "Street",
    "North",
    "South",
    "Iron",
    "Silver",
    "Moon",
    "Star",
)


def title(rng: random.Random, number: int) -> str:
    words = rng.sample(WORDS, rng.choice((1, 2, 2, 3, 3, 4)))
    name = " ".join(words)
    if rng.random() < 0.3:
        name = "The " + name
    if rng.random() < 0.2:
        name += f": Season {rng.randint(1, 5)}"
    return f"{name} {number}" if rng.random() < 0.5 else name


def regions() -> list[str]:
    from bot.regions import COUNTRY_CODES

    return ["world", *sorted(COUNTRY_CODES)[: REGION_COUNT - 1]]


def write_csv(path: Path, megabytes: float, seed: int = 1) -> int:
    """Write the file; returns how many entries (rows) it holds."""
    rng = random.Random(seed)
    names = regions()
    target = megabytes * 1_000_000
    made = 0
    pools: dict[str, list[list]] = {c: [] for c in CATEGORIES}  # [title, popularity, decay, taste]
    affinity = {(r, c): random.Random(f"{r}{c}").random() for r in names for c in CATEGORIES}
    rows = 0
    day = START
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["date", "region", "category", "rank", "title"])
        while out.tell() < target:
            for category in CATEGORIES:
                pool = pools[category]
                for item in pool:
                    item[1] *= item[2]
                pool.sort(key=lambda item: -item[1])
                del pool[POOL - RELEASES :]
                while len(pool) < POOL:
                    made += 1
                    fade, taste = rng.uniform(0.7, 0.97), rng.random()
                    pool.append([title(rng, made), rng.lognormvariate(0, 1), fade, taste])
            iso = day.isoformat()
            for region in names:
                for category in CATEGORIES:
                    lean = affinity[region, category]
                    ranked = sorted(
                        pools[category],
                        key=lambda item, lean=lean: -item[1] * (1 + ((item[3] + lean) % 1)),
                    )
                    for rank, item in enumerate(ranked[:10], start=1):
                        writer.writerow((iso, region, category, rank, item[0]))
                    rows += 10
            day += timedelta(days=1)
    print(f"wrote {rows:,} entries, {made:,} distinct titles, {(day - START).days:,} days ({START} ..)")
    return rows


def run_import(path: Path, db: Path) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, peak RSS in bytes, stdout) of `chartbot import` in a child process."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "bot", "import", str(path), "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = child.communicate()
    elapsed = time.perf_counter() - started
    if child.returncode != 0:
        sys.exit(f"chartbot import failed ({child.returncode}): {err.decode(errors='replace')}")
    # communicate() reaped the child: its own peak is the children's peak, as it is our only child
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, out.decode()  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mb", type=float, default=200, help="size of the CSV to write (default 200)")
    parser.add_argument("--keep", type=Path, help="write the CSV here and keep it")
    parser.add_argument("--file", type=Path, help="import this existing CSV instead of writing one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or args.keep or Path(tmp) / "charts.csv"
        if args.file is None:
            started = time.perf_counter()
            write_csv(path, args.mb)
            print(f"(written in {time.perf_counter() - started:.1f} s)")
        size = path.stat().st_size
        elapsed, cpu, peak, out = run_import(path, Path(tmp) / "import.sqlite3")
    match = re.search(r"\(([\d,]+) entries stored\)", out)
    entries = int(match[1].replace(",", "")) if match else 0
    print(out.strip())
    print(f"file:       {size / 1e6:,.1f} MB")
    print(f"wall time:  {elapsed:,.1f} s (CPU {cpu:,.1f} s)")
    print(f"speed:      {entries / elapsed:,.0f} entries/s ({entries:,} entries)")
    print(f"peak RSS:   {peak / 1e6:,.0f} MB (target ≤ 500 MB)")


if __name__ == "__main__":
    main()
