"""What a wake-up costs this machine: CPU time per `asyncio.sleep` of a few milliseconds, the price a
paced fan-out pays for every post and every response (see bench/fanout.py).

    python bench/wakeup.py [--wakes 500]

On bare metal a wake-up costs a few microseconds; on a virtual machine it can cost a hundred.
"""

from __future__ import annotations

import argparse
import asyncio
import time


async def cpu_per_wake(interval: float, wakes: int) -> float:
    cpu = time.process_time()
    for _ in range(wakes):
        await asyncio.sleep(interval)
    return (time.process_time() - cpu) / wakes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wakes", type=int, default=500)
    args = parser.parse_args()
    for interval in (0.0, 0.001, 0.005, 0.02):
        cost = asyncio.run(cpu_per_wake(interval, args.wakes))
        print(f"asyncio.sleep({interval}): {cost * 1e6:6.1f} µs of CPU per wake-up")


if __name__ == "__main__":
    main()
