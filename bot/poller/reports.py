"""What a poll cycle reports: per source, the reads, charts stored, milestones found and failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.model import Milestone


@dataclass(frozen=True, slots=True)
class ItemError:
    """One file, page or chart that failed. `kind`: fetch, challenge, not-found, page, ingest, bug."""

    chart: str
    kind: str
    message: str


@dataclass
class SourceReport:
    """What one cycle of one source did."""

    source: str
    started: datetime
    items: int = 0  # files or pages asked for
    fetched: int = 0  # full answers that parsed
    not_modified: int = 0  # 304: nothing changed since the last stored answer
    pending: int = 0  # pages of a day still filling, read once: stored when a second read agrees
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    entries: int = 0
    milestones: list[Milestone] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)
    aggregates: list[str] = field(default_factory=list)  # periods whose aggregates were detected
    waiting: list[str] = field(default_factory=list)  # periods whose regions are still coming in
    held: list[str] = field(default_factory=list)  # aggregates held back, and why
    healthy: bool | None = None  # None: this cycle learnt nothing new about the source
    note: str | None = None
    elapsed: float = 0.0

    def summary(self) -> str:
        parts = [f"{self.items} read"]
        for count, what in (
            (self.not_modified, "not modified"),
            (self.pending, "waiting for a second read"),
            (self.added, "charts added"),
            (self.replaced, "revised"),
            (self.unchanged, "unchanged"),
            (len(self.milestones), "milestones"),
            (len(self.errors), "failed"),
        ):
            if count:
                parts.append(f"{count} {what}")
        state = "" if self.healthy is not False else f"; UNHEALTHY: {self.note}"
        return f"{self.source}: {', '.join(parts)} in {self.elapsed:.1f} s{state}"


@dataclass
class PollReport:
    sources: dict[str, SourceReport]
    elapsed: float

    @property
    def milestones(self) -> list[Milestone]:
        return [m for r in self.sources.values() for m in r.milestones]

    @property
    def errors(self) -> list[ItemError]:
        return [e for r in self.sources.values() for e in r.errors]

    @property
    def added(self) -> int:
        return sum(r.added + r.replaced for r in self.sources.values())
