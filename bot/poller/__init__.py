"""The poller: each enabled source on its own schedule, fetched politely, validated, stored.

`loop` runs the sources; `cycle` is what one cycle of any source does; `netflix` and `flixpatrol` are
the two sources' cycles; `reports` is what a cycle tells.
"""

from bot.poller.cycle import Cycle
from bot.poller.flixpatrol import FlixPatrolCycle, chart_day
from bot.poller.loop import Poller, make_http_client
from bot.poller.netflix import NetflixCycle
from bot.poller.reports import ItemError, PollReport, SourceReport

__all__ = [
    "Cycle",
    "FlixPatrolCycle",
    "ItemError",
    "NetflixCycle",
    "PollReport",
    "Poller",
    "SourceReport",
    "chart_day",
    "make_http_client",
]
