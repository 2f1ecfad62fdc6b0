"""`chartbot db copy`: a whole database moved between stores, in either direction (SQLite file <->
PostgreSQL), through the engines' neutral table rows (`bot.store.catalog`).

The source is read from one snapshot; the target is written in one transaction, so a failure or a kill
leaves it as it was. A target that already holds charts is refused unless it is to be replaced. At the
end every table's row count is checked against the source's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.model import InputError
from bot.store import TABLES, Store

Progress = Callable[[str, int, int], None]  # (table, rows done, rows in all)


@dataclass
class CopyReport:
    counts: dict[str, int] = field(default_factory=dict)  # table -> rows copied

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


class CopyMismatch(InputError):
    """The target's row counts differ from the source's after the copy (it was rolled back)."""


async def copy_store(
    source: Store, target: Store, *, replace: bool = False, progress: Progress | None = None
) -> CopyReport:
    """Copy every table of `source` into `target`: all of it, or (on any error) nothing."""
    charts = (await target.status()).counts.get("charts", 0)
    if charts and not replace:
        raise InputError(
            f"{target.location} already holds {charts:,} charts: add --replace to overwrite it with the copy"
        )
    report = CopyReport()
    async with source.read_tables() as rows, target.load_tables() as load:
        wanted = {table.name: await rows.count(table.name) for table in TABLES}
        await load.clear()
        for table in TABLES:
            done = 0
            async for batch in rows.rows(table.name):
                await load.write(table.name, batch)
                done += len(batch)
                if progress is not None:
                    progress(table.name, done, wanted[table.name])
            if progress is not None and not done:
                progress(table.name, 0, 0)
            report.counts[table.name] = done
        copied = {table.name: await load.count(table.name) for table in TABLES}
        wrong = {name: (wanted[name], copied[name]) for name in wanted if wanted[name] != copied[name]}
        if wrong:
            first, (expected, found) = next(iter(wrong.items()))
            raise CopyMismatch(
                f"the copy's {first} has {found:,} rows, the source {expected:,}: nothing was written"
            )
    return report
