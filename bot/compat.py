"""Every use of discord.py's private API, in one place (see tests/test_compat.py for the canaries)."""

from __future__ import annotations


def amortize_bucket_sweep(http: object, floor: int = 256) -> bool:
    """Make discord.py's rate-limit bucket sweep O(1) amortized instead of O(buckets) per new bucket.

    discord.py (2.x) keeps one bucket per channel and, once it holds 256, scans all of them each time it
    creates another. A fan-out to N new channels then costs O(N²): 22 s of CPU for 10,000 channels,
    measured with bench/fanout.py. Sweeping only when the count has doubled since the last sweep keeps
    memory within twice the live buckets and the whole fan-out O(N). Returns False (and changes
    nothing) on a discord.py without that method.
    """
    sweep = getattr(type(http), "_try_clear_expired_ratelimits", None)
    if sweep is None or not isinstance(getattr(http, "_buckets", None), dict):
        return False
    threshold = floor

    def amortized() -> None:
        nonlocal threshold
        if len(http._buckets) < threshold:  # type: ignore[attr-defined]
            return
        sweep(http)
        threshold = max(floor, 2 * len(http._buckets))  # type: ignore[attr-defined]

    http._try_clear_expired_ratelimits = amortized  # type: ignore[attr-defined]
    return True
