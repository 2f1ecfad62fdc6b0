"""A synthetic daily history shaped like FlixPatrol's: regions × categories × days of Top 10s.

Every day a few titles are released per category, the same pool for every region. A title's
popularity (in log units) climbs for 0-3 days after release, holds its peak for up to 5 days, then
decays at its own rate; big releases burn out faster, and a few "catalogue" titles stay modest but
linger for weeks. Each region ranks the titles by that popularity plus a fixed affinity per title and
region ("world", an aggregate, has none) plus a small jitter that persists from day to day (AR(1)),
so regions differ but share their hits. New titles mostly enter low and climb, hits enter near the
top, and No. 1 runs last days, not hours.

Calibrated to Netflix's real US daily Top 10 (tests/data/netflix_us_daily: 710 days, 3,606
milestones, 0.51 per entry), per chart-day, 365 days × 95 regions × 2 categories, seed 1:

    kind            synthetic  real
    entered_top10   1.18       1.21
    left_top10      1.18       1.21
    new_peak        0.73       0.68
    no1_streak      0.76       0.78
    top10_run       0.77       0.76
    reached_no1     0.23       0.22  (lost_no1 the same)
    per entry       0.51       0.51

Also close to the real file: mean No. 1 run 4.2 days (real 4.6), mean stay in the Top 10 8.2 days
(real 8.1), about 30% of chart slots held by titles past their 14th day (real 30%). Deterministic
for a given seed.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from datetime import date, timedelta

from bot.model import ChartKey, Entry, Snapshot, title_key

REGION_COUNT = 95
CATEGORIES = ("tv", "movies")
START = date(2021, 1, 1)

# the model, in log-popularity units; fitted to the real US daily file (see the docstring)
RELEASES = 3  # new titles per category per day, shared by every region
WARMUP = 60  # days simulated before START, so that the first charts hold titles of every age
STRENGTH = 1.0  # sigma of a title's peak popularity
HIT = (0.1, 1.3)  # chance that a release is a hit, and what a hit adds to its peak
PEAK_AGE = (0.2, 0.35, 0.3, 0.15)  # chance that a title peaks 0, 1, 2 or 3 days after release
RISE = 0.6  # popularity gained per day on the way up to the peak
HOLD = 5  # a title holds its peak for 0 to HOLD days (uniform) before it decays
DECAY = (-2.0, 0.5)  # daily decay after the hold: lognormal(mu, sigma)...
FADE = 0.37  # ... times exp(FADE × peak): big releases burn out sooner
SLOW = (0.1, 0.55, 0.4, -4.0, 0.5)  # catalogue titles: share, peak (mu, sigma), decay lognormal(mu, sigma)
REGIONAL = 0.8  # sigma of a title's fixed affinity in a region ("world" has none)
NOISE = 0.12  # sigma of the daily jitter of a title in a region...
PERSIST = 0.9  # ... and its day-to-day correlation
JITTER_PERIOD = 1 << 16  # length of the precomputed jitter series
CUTOFF = 2.0  # a title this far below the day's 10th best is in no region's chart: not scored


def regions(count: int = REGION_COUNT) -> list[str]:
    from bot.regions import COUNTRY_CODES

    return ["world", *sorted(COUNTRY_CODES)[: count - 1]]


def _release(rng: random.Random) -> tuple[float, int, int, float]:
    """A new title: peak popularity, days from release to the peak, days held there, daily decay after."""
    peak_age = rng.choices(range(len(PEAK_AGE)), PEAK_AGE)[0]
    hold = rng.randint(0, HOLD)
    if rng.random() < SLOW[0]:  # a catalogue title: modest, but lingers for weeks
        return rng.gauss(SLOW[1], SLOW[2]), peak_age, hold, math.exp(rng.gauss(SLOW[3], SLOW[4]))
    peak = rng.gauss(0, STRENGTH) + (HIT[1] if rng.random() < HIT[0] else 0.0)
    return peak, peak_age, hold, math.exp(rng.gauss(DECAY[0], DECAY[1]) + FADE * peak)


def history(days: int, region_count: int = REGION_COUNT, seed: int = 1) -> Iterator[list[Snapshot]]:
    """Yields one list of snapshots per day (every region and category of that day)."""
    rng = random.Random(seed)
    gauss = rng.gauss
    names = regions(region_count)
    total = (days + WARMUP) * RELEASES  # titles per category; title t is released on day t // RELEASES
    titles = {c: [f"{c.title()} Title {n}" for n in range(total)] for c in CATEGORIES}
    keys = {t: title_key(t) for c in CATEGORIES for t in titles[c]}
    releases = {c: [_release(rng) for _ in range(total)] for c in CATEGORIES}
    affinity = {  # per category and region, by title
        c: [[0.0] * total] + [[gauss(0, REGIONAL) for _ in range(total)] for _ in names[1:]]
        for c in CATEGORIES
    }
    # a title's jitter in a region is a stretch of one long AR(1) series, read from a random phase one
    # step a day: persistent like the real thing, and far cheaper than a random draw per entry
    jitter, j = [], gauss(0, NOISE)
    fresh = NOISE * math.sqrt(1 - PERSIST * PERSIST)
    for _ in range(JITTER_PERIOD):
        jitter.append(j)
        j = PERSIST * j + gauss(0, fresh)
    phases = {c: [[rng.randrange(JITTER_PERIOD) for _ in range(total)] for _ in names] for c in CATEGORIES}
    live: dict[str, list[int]] = {c: [] for c in CATEGORIES}  # released and not yet faded for good
    for n in range(days + WARMUP):
        # the day's popularity of every live title, the same in every region
        scored: dict[str, list[tuple[int, float]]] = {}
        for c in CATEGORIES:
            live[c].extend(range(n * RELEASES, (n + 1) * RELEASES))
            settled, rising = [], []
            for t in live[c]:
                peak, peak_age, hold, decay = releases[c][t]
                age = n - t // RELEASES - peak_age  # days since the peak
                if age < 0:
                    rising.append((t, peak + RISE * age, peak))
                else:
                    settled.append((t, peak - decay * max(0, age - hold)))
            floor = heapq.nlargest(10, [p for _, p in settled] + [p for _, p, _ in rising])[-1] - CUTOFF
            settled = [(t, p) for t, p in settled if p > floor]  # past its peak and this low: gone
            live[c] = [t for t, _ in settled] + [t for t, _, _ in rising]
            scored[c] = settled + [(t, p) for t, p, peak in rising if peak > floor]
        if n < WARMUP:
            continue
        day = START + timedelta(days=n - WARMUP)
        charts = []
        for i, region in enumerate(names):
            for category in CATEGORIES:
                pool, near, phase = titles[category], affinity[category][i], phases[category][i]
                ranked = sorted(
                    ((p + near[t] + jitter[(phase[t] + n) % JITTER_PERIOD], t) for t, p in scored[category]),
                    reverse=True,
                )
                key = ChartKey("flixpatrol", "netflix", region, category, "day", day)
                entries = tuple(
                    Entry(rank=r, title=pool[t], title_key=keys[pool[t]], points=float(11 - r))
                    for r, (_, t) in enumerate(ranked[:10], start=1)
                )
                charts.append(Snapshot(key, entries))
        yield charts
