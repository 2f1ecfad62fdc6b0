"""Every table of the store, engine-neutral: what a copy between engines moves, and in which order.

Both engines keep the same tables with the same columns (SQLite as text and integers, PostgreSQL with
its own types). A row crosses between them in one neutral form, a tuple in `Table.columns` order:

| kind   | Python value                                                     |
|--------|------------------------------------------------------------------|
| `int`  | int (ids, counts, ranks; Discord ids are 64-bit)                 |
| `real` | float                                                            |
| `text` | str                                                              |
| `json` | str: the JSON text itself, byte for byte                         |
| `bool` | bool                                                             |
| `date` | datetime.date                                                    |
| `time` | datetime.datetime, aware, UTC                                    |

None is NULL in every kind. `TABLES` is in dependency order (a table only refers to tables before
it): write in this order, empty in the reverse one. A store reads rows with `read_tables()` and writes
them with `load_tables()` (see `bot.store.interfaces.TableRows` and `TableLoad`).
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("int", "real", "text", "json", "bool", "date", "time")


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str
    # how SQLite writes a moment as text: "seconds" or "milliseconds" (its columns differ)
    timespec: str = "seconds"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown column kind {self.kind!r}")


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # the order rows are read in (the primary key)
    identity: str | None = None  # the id column the database assigns, if any

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _cols(spec: str, timespec: str = "seconds") -> tuple[Column, ...]:
    """'id:int title:text …' -> columns."""
    return tuple(Column(*item.split(":"), timespec=timespec) for item in spec.split())  # type: ignore[misc]


TABLES: tuple[Table, ...] = (
    Table("titles", _cols("id:int title_key:text title:text cut_short:bool"), ("id",), "id"),
    Table(
        "series",
        _cols(
            "id:int service:text region:text category:text period:text latest_date:date record_run:int "
            "record_holder:int record_end:date version:int"
        ),
        ("id",),
        "id",
    ),
    Table(
        "charts",
        _cols("id:int series_id:int date:date source:text digest:text complete:bool ingested_at:time"),
        ("id",),
        "id",
    ),
    Table(
        "entries",
        _cols(
            "chart_id:int rank:int title_id:int season:text points:real hours:int views:int runtime:real "
            "weeks_reported:int window_days:int"
        ),
        ("chart_id", "rank"),
    ),
    Table(
        "title_stats",
        _cols(
            "series_id:int title_id:int first_date:date last_date:date last_rank:int prev_rank:int peak:int "
            "peak_date:date periods_in_top10:int periods_at_no1:int no1_run:int longest_no1_run:int "
            "longest_no1_end:date top10_run:int"
        ),
        ("title_id", "series_id"),
    ),
    Table(
        "country_periods",
        _cols("service:text category:text period:text date:date reporting:int"),
        ("service", "category", "period", "date"),
    ),
    Table(
        "country_counts",
        _cols("service:text category:text period:text date:date title_id:int no1:int top10:int"),
        ("service", "category", "period", "date", "title_id"),
    ),
    Table("reads", _cols("id:int source:text started_at:time"), ("id",), "id"),
    Table(
        "outbox",
        _cols(
            "id:int title_id:int series_id:int date:date kind:text detail:text scope:text source:text "
            "value:int previous:int context:json status:text revision:int created_at:time updated_at:time "
            "read_id:int"
        ),
        ("id",),
        "id",
    ),
    Table(
        "source_health",
        _cols(
            "source:text chart:text healthy:bool note:text last_success:time last_error:text "
            "last_error_at:time consecutive_failures:int rows:int chart_date:date pending_date:date "
            "pending_digest:text updated_at:time"
        ),
        ("source", "chart"),
    ),
    Table(
        "http_validators",
        _cols("url:text etag:text last_modified:text updated_at:time"),
        ("url",),
    ),
    Table(
        "guild_settings",
        _cols(
            "guild_id:int channel_id:int regions:json events:json digest:text mention_role_id:int "
            "created_at:time updated_at:time language:text server_language:text publish:bool",
            timespec="milliseconds",
        ),
        ("guild_id",),
    ),
    Table(
        "watches",
        _cols(
            "id:int guild_id:int target:text title:text channel_id:int since_id:int created_at:time "
            "since_read:int",
            timespec="milliseconds",
        ),
        ("id",),
        "id",
    ),
    Table(
        "channel_health",
        _cols(
            "guild_id:int channel_id:int broken:text broken_at:time blocked:text blocked_at:time",
            timespec="milliseconds",
        ),
        ("guild_id", "channel_id"),
    ),
    Table(
        "deliveries",
        _cols(
            "id:int guild_id:int channel_id:int group_key:text nonce:text state:text message_id:int "
            "mention_role_id:int attempts:int last_error:text due_at:time edit_needed:bool sending_at:time "
            "created_at:time updated_at:time publish:text publish_at:time",
            timespec="milliseconds",
        ),
        ("id",),
        "id",
    ),
    Table(
        "delivery_items",
        _cols("channel_id:int milestone_id:int delivery_id:int revision:int retracted:bool"),
        ("channel_id", "milestone_id"),
    ),
    Table("bot_state", _cols("key:text value:text updated_at:time", timespec="milliseconds"), ("key",)),
)

TABLE_NAMES: tuple[str, ...] = tuple(t.name for t in TABLES)
BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}


def table(name: str) -> Table:
    """The table of that name; a name not in the catalogue is refused (it is never spliced into SQL)."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"no such table in the store: {name!r}") from None
