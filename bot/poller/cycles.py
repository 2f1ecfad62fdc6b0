"""Which cycle polls which source."""

from __future__ import annotations

from bot.poller.cycle import Cycle
from bot.poller.flixpatrol import FlixPatrolCycle
from bot.poller.netflix import NetflixCycle

CYCLES: dict[str, type[Cycle]] = {"netflix": NetflixCycle, "flixpatrol": FlixPatrolCycle}
