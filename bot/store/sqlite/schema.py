"""The database schema, versioned with PRAGMA user_version and migrated forward only."""

from __future__ import annotations

import sqlite3

import aiosqlite

from bot.store.interfaces import SchemaError

# Each step moves the schema from version N to N + 1; a released step is never edited.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        region TEXT NOT NULL,
        category TEXT NOT NULL,
        period TEXT NOT NULL,
        latest_date TEXT,
        record_run INTEGER NOT NULL DEFAULT 0,        -- longest No. 1 run in this series
        record_holder INTEGER REFERENCES titles(id),
        record_end TEXT,
        version INTEGER NOT NULL DEFAULT 0,            -- bumped by every write: caches check it
        UNIQUE (service, region, category, period)
    );
    CREATE TABLE charts (
        id INTEGER PRIMARY KEY,
        series_id INTEGER NOT NULL REFERENCES series(id),
        date TEXT NOT NULL,
        source TEXT NOT NULL,
        digest TEXT NOT NULL,                          -- identical content: re-ingest is a no-op
        complete INTEGER NOT NULL,
        ingested_at TEXT NOT NULL,
        UNIQUE (series_id, date)
    );
    CREATE INDEX charts_by_date ON charts (date);
    CREATE TABLE titles (
        id INTEGER PRIMARY KEY,
        title_key TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL
    );
    CREATE TABLE entries (
        chart_id INTEGER NOT NULL REFERENCES charts(id),
        rank INTEGER NOT NULL,
        title_id INTEGER NOT NULL REFERENCES titles(id),
        season TEXT,
        points REAL,
        hours INTEGER,
        views INTEGER,
        runtime REAL,
        weeks_reported INTEGER,
        PRIMARY KEY (chart_id, rank)
    ) WITHOUT ROWID;
    CREATE INDEX entries_by_title ON entries (title_id, chart_id);
    CREATE TABLE title_stats (
        series_id INTEGER NOT NULL REFERENCES series(id),
        title_id INTEGER NOT NULL REFERENCES titles(id),
        first_date TEXT NOT NULL,
        last_date TEXT NOT NULL,
        last_rank INTEGER NOT NULL,
        prev_rank INTEGER,
        peak INTEGER NOT NULL,
        peak_date TEXT NOT NULL,
        periods_in_top10 INTEGER NOT NULL,
        periods_at_no1 INTEGER NOT NULL,
        no1_run INTEGER NOT NULL,
        longest_no1_run INTEGER NOT NULL,
        longest_no1_end TEXT,
        top10_run INTEGER NOT NULL,
        PRIMARY KEY (title_id, series_id)                -- a title's standings: one range read
    ) WITHOUT ROWID;
    -- one row per (service, category, period, date): how many country charts reported
    CREATE TABLE country_periods (
        service TEXT NOT NULL,
        category TEXT NOT NULL,
        period TEXT NOT NULL,
        date TEXT NOT NULL,
        reporting INTEGER NOT NULL,
        PRIMARY KEY (service, category, period, date)
    ) WITHOUT ROWID;
    -- per title and period: countries where it is No. 1 / in the top 10
    CREATE TABLE country_counts (
        service TEXT NOT NULL,
        category TEXT NOT NULL,
        period TEXT NOT NULL,
        date TEXT NOT NULL,
        title_id INTEGER NOT NULL REFERENCES titles(id),
        no1 INTEGER NOT NULL,
        top10 INTEGER NOT NULL,
        PRIMARY KEY (service, category, period, date, title_id)
    ) WITHOUT ROWID;
    CREATE INDEX country_counts_by_title ON country_counts (title_id, date);
    CREATE INDEX country_counts_by_no1 ON country_counts (service, category, period, no1);
    -- every milestone ever detected, keyed for dedupe; delivery reads the pending ones
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        scope TEXT NOT NULL,                           -- 'chart' or 'countries'
        title_id INTEGER NOT NULL REFERENCES titles(id),
        source TEXT NOT NULL,
        service TEXT NOT NULL,
        region TEXT NOT NULL,
        category TEXT NOT NULL,
        period TEXT NOT NULL,
        date TEXT NOT NULL,
        value INTEGER,
        previous INTEGER,
        context TEXT NOT NULL,                         -- JSON
        status TEXT NOT NULL DEFAULT 'pending',        -- pending, sent, skipped, retracted
        revision INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX outbox_pending ON outbox (date) WHERE status = 'pending';
    CREATE INDEX outbox_by_title ON outbox (title_id, date);
    """,
    # 2: the poller's bookkeeping (bot/store/health.py): how each source and chart fares, and the
    # ETag / Last-Modified of the files it fetched, so a restart still sends conditional GETs.
    """
    CREATE TABLE source_health (
        source TEXT NOT NULL,
        chart TEXT NOT NULL,                           -- 'countries', 'netflix/us'; '*': the source itself
        healthy INTEGER NOT NULL DEFAULT 1,
        note TEXT,                                     -- why not healthy, what is held back
        last_success TEXT,
        last_error TEXT,
        last_error_at TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        rows INTEGER,                                  -- rows read at the last success
        chart_date TEXT,                               -- newest chart date accepted from it
        pending_date TEXT,                             -- a read not accepted yet (its day still fills)
        pending_digest TEXT,                           -- what it said: accepted once a read agrees
        updated_at TEXT NOT NULL,
        PRIMARY KEY (source, chart)
    ) WITHOUT ROWID;
    CREATE TABLE http_validators (
        url TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        updated_at TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 3: announcements (bot/store/guilds.py): each server's settings and watches, the health of the
    # channels it posts to, and one delivery row per message (with its milestones), so a post is made
    # once per (milestone, channel) even across a crash, and a revised milestone edits its post.
    """
    CREATE TABLE guild_settings (
        guild_id INTEGER PRIMARY KEY,
        channel_id INTEGER,                            -- the default announcement channel
        regions TEXT,                                  -- JSON list of regions; NULL: the defaults; ["*"]: all
        events TEXT,                                   -- JSON list of milestone kinds; NULL: the defaults
        digest TEXT NOT NULL DEFAULT 'instant',        -- 'instant' or 'period'
        mention_role_id INTEGER,                       -- the one mention ever allowed
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE watches (
        id INTEGER PRIMARY KEY,
        guild_id INTEGER NOT NULL,
        target TEXT NOT NULL,                          -- a title_key, or '*': the headlines of every title
        title TEXT NOT NULL,                           -- as shown
        channel_id INTEGER NOT NULL DEFAULT 0,         -- 0: the server's announcement channel
        since TEXT NOT NULL,                           -- when it started: older milestones are never posted
        since_keys TEXT NOT NULL DEFAULT '[]',         -- JSON: milestones of that very second already there
        created_at TEXT NOT NULL,
        UNIQUE (guild_id, target, channel_id)
    );
    CREATE TABLE channel_health (
        guild_id INTEGER NOT NULL,
        channel_id INTEGER NOT NULL,
        broken TEXT,                                   -- why posting fails for good (403/404); NULL: fine
        broken_at TEXT,
        PRIMARY KEY (guild_id, channel_id)
    );
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        guild_id INTEGER NOT NULL,
        channel_id INTEGER NOT NULL,
        group_key TEXT NOT NULL,                       -- title and period, or the period of a digest
        nonce TEXT NOT NULL,                           -- sent with the post; found again after a crash
        state TEXT NOT NULL DEFAULT 'planned',         -- planned, sending, sent, failed
        message_id INTEGER,
        mention_role_id INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        due_at TEXT NOT NULL,                          -- not before (grouping window, backoff)
        edit_needed INTEGER NOT NULL DEFAULT 0,        -- a milestone in it was revised or retracted
        sending_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX deliveries_due ON deliveries (state, due_at);
    CREATE INDEX deliveries_open ON deliveries (channel_id, group_key, state);
    CREATE INDEX deliveries_edits ON deliveries (edit_needed) WHERE edit_needed = 1;
    CREATE TABLE delivery_items (
        channel_id INTEGER NOT NULL,
        milestone_key TEXT NOT NULL,
        delivery_id INTEGER NOT NULL REFERENCES deliveries(id),
        revision INTEGER NOT NULL,                     -- the outbox revision the post shows
        retracted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (channel_id, milestone_key)
    ) WITHOUT ROWID;
    CREATE INDEX delivery_items_by_key ON delivery_items (milestone_key);
    CREATE INDEX delivery_items_by_delivery ON delivery_items (delivery_id);
    """,
    # 4: the outbox loses its unique index on `key`: one more B-tree entry of ~60 bytes per milestone,
    # the dearest of its writes (0.6-0.9 s of a year's replay, 10-15% of what detection adds). Ingest
    # keeps keys unique itself: a new newest period is detected once, and a period detected again
    # first reads what its own chart holds, found by title (outbox_by_title). After ingest an
    # outbox row is found by its id: deliveries name their milestones by `milestone_id`. A row's
    # `updated_at` stays NULL until it changes.
    # Also: the few milestones revised or retracted after they were written, by when. The announcer
    # looks for posts to edit every round and would otherwise walk every delivery item ever made
    # (one per channel and milestone); partial, so the rows ingest writes never enter it.
    """
    ALTER TABLE delivery_items ADD COLUMN milestone_id INTEGER NOT NULL DEFAULT 0;
    UPDATE delivery_items
        SET milestone_id = coalesce((SELECT o.id FROM outbox o WHERE o.key = delivery_items.milestone_key), 0);
    DROP INDEX delivery_items_by_key;
    CREATE INDEX delivery_items_by_milestone ON delivery_items (milestone_id);
    CREATE TABLE outbox_v4 (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,                             -- unique: kept so by ingest (see above)
        kind TEXT NOT NULL,
        scope TEXT NOT NULL,
        title_id INTEGER NOT NULL REFERENCES titles(id),
        source TEXT NOT NULL,
        service TEXT NOT NULL,
        region TEXT NOT NULL,
        category TEXT NOT NULL,
        period TEXT NOT NULL,
        date TEXT NOT NULL,
        value INTEGER,
        previous INTEGER,
        context TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        revision INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT                                -- NULL: unchanged since written
    );
    INSERT INTO outbox_v4 SELECT id, key, kind, scope, title_id, source, service, region, category, period,
        date, value, previous, context, status, revision, created_at, updated_at FROM outbox;
    DROP TABLE outbox;
    ALTER TABLE outbox_v4 RENAME TO outbox;
    CREATE INDEX outbox_pending ON outbox (date) WHERE status = 'pending';
    CREATE INDEX outbox_by_title ON outbox (title_id, date);
    CREATE INDEX outbox_revised ON outbox (updated_at) WHERE revision > 0 OR status = 'retracted';
    """,
    # 5: the store behind interfaces, with its invariants in the database. A milestone is unique by
    # (title, series, date, kind, detail) - enforced by a unique index that replaces outbox_by_title
    # (its prefix serves the same lookups) and written with INSERT ... ON CONFLICT; the text key is
    # built from those parts when read, so the row loses its 60-byte key and its four series columns.
    # Country news gets a series row of its own (region 'world' of the country charts' category).
    # A watch starts at a high-water mark of milestone ids, not at a timestamp; delivery items name
    # their milestones by id alone. A title cut short by its source ("…") is flagged until a full
    # title completes it.
    """
    ALTER TABLE titles ADD COLUMN cut_short INTEGER NOT NULL DEFAULT 0;
    UPDATE titles SET cut_short = 1 WHERE title LIKE '%…';
    CREATE INDEX titles_cut_short ON titles (title_key) WHERE cut_short = 1;
    INSERT OR IGNORE INTO series (service, region, category, period)
        SELECT DISTINCT service, region, category, period FROM outbox;
    CREATE TABLE outbox_v5 (
        id INTEGER PRIMARY KEY,
        title_id INTEGER NOT NULL REFERENCES titles(id),
        series_id INTEGER NOT NULL REFERENCES series(id),
        date TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',               -- tells apart two of one kind (which record)
        scope TEXT NOT NULL,                           -- 'chart' or 'countries'
        source TEXT NOT NULL,
        value INTEGER,
        previous INTEGER,
        context TEXT NOT NULL,                         -- JSON
        status TEXT NOT NULL DEFAULT 'pending',        -- pending, sent, skipped, retracted
        revision INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT,                               -- NULL: unchanged since written
        UNIQUE (title_id, series_id, date, kind, detail)
    );
    INSERT INTO outbox_v5 (id, title_id, series_id, date, kind, detail, scope, source, value, previous,
            context, status, revision, created_at, updated_at)
        SELECT o.id, o.title_id, s.id, o.date, o.kind,
            substr(o.key, length(o.date || o.kind || s.service || s.region || s.category || s.period
                || t.title_key) + 8),                  -- what follows `date|kind|series|title|`, if anything
            o.scope, o.source, o.value, o.previous, o.context, o.status, o.revision, o.created_at, o.updated_at
        FROM outbox o JOIN series s USING (service, region, category, period) JOIN titles t ON t.id = o.title_id
        ORDER BY o.id
        ON CONFLICT DO NOTHING;
    DROP TABLE outbox;
    ALTER TABLE outbox_v5 RENAME TO outbox;
    CREATE INDEX outbox_pending ON outbox (id) WHERE status = 'pending';
    CREATE INDEX outbox_revised ON outbox (updated_at) WHERE revision > 0 OR status = 'retracted';
    CREATE TABLE delivery_items_v5 (
        channel_id INTEGER NOT NULL,
        milestone_id INTEGER NOT NULL REFERENCES outbox(id),
        delivery_id INTEGER NOT NULL REFERENCES deliveries(id),
        revision INTEGER NOT NULL,                     -- the outbox revision the post shows
        retracted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (channel_id, milestone_id)
    ) WITHOUT ROWID;
    INSERT INTO delivery_items_v5 (channel_id, milestone_id, delivery_id, revision, retracted)
        SELECT channel_id, milestone_id, delivery_id, revision, retracted FROM delivery_items
        WHERE milestone_id IN (SELECT id FROM outbox) ON CONFLICT DO NOTHING;
    DROP TABLE delivery_items;
    ALTER TABLE delivery_items_v5 RENAME TO delivery_items;
    CREATE INDEX delivery_items_by_delivery ON delivery_items (delivery_id);
    CREATE INDEX delivery_items_by_milestone ON delivery_items (milestone_id);
    CREATE TABLE watches_v5 (
        id INTEGER PRIMARY KEY,
        guild_id INTEGER NOT NULL,
        target TEXT NOT NULL,                          -- a title_key, or '*': the headlines of every title
        title TEXT NOT NULL,                           -- as shown
        channel_id INTEGER NOT NULL DEFAULT 0,         -- 0: the server's announcement channel
        since_id INTEGER NOT NULL,                     -- the newest milestone id when it started
        created_at TEXT NOT NULL,
        UNIQUE (guild_id, target, channel_id)
    );
    INSERT INTO watches_v5 (id, guild_id, target, title, channel_id, since_id, created_at)
        SELECT id, guild_id, target, title, channel_id,
            (SELECT coalesce(max(o.id), 0) FROM outbox o WHERE o.created_at <= substr(w.since, 1, 19)),
            created_at
        FROM watches w;
    DROP TABLE watches;
    ALTER TABLE watches_v5 RENAME TO watches;
    """,
    # 6: Netflix's all-time lists count their figures over a window (the first 28 or 91 days): kept per
    # entry, so a stored version can be told from a re-based one.
    """
    ALTER TABLE entries ADD COLUMN window_days INTEGER;
    """,
    # 7: reads. Every read of a source (a poll cycle, an import) gets a number when it begins, and the
    # milestones it stores carry it; a watch records the newest read begun when it was made. So a
    # watch made while a catch-up is downloading or storing never gets that catch-up's news, however
    # long it takes. What was stored before this step counts as read 1.
    """
    CREATE TABLE reads (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        started_at TEXT NOT NULL
    );
    INSERT INTO reads (id, source, started_at) VALUES (1, 'history', strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'));
    ALTER TABLE outbox ADD COLUMN read_id INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE watches ADD COLUMN since_read INTEGER NOT NULL DEFAULT 0;
    """,
    # 8: the language of a server's posts: the one an admin chose (/settings language; NULL: the
    # server's own), and the server's own as Discord last named it at an admin command (one of
    # chartbot's languages; NULL: English, or not seen yet).
    """
    ALTER TABLE guild_settings ADD COLUMN language TEXT;
    ALTER TABLE guild_settings ADD COLUMN server_language TEXT;
    """,
    # 9: Discord's failures as Discord documents them, and publishing (bot/announcer/engine.py).
    # A channel where the bot lacks a permission now is `blocked` with the reason: its deliveries wait
    # (pending, not failed) until the permission is back, unlike `broken` (403/404: failed for good).
    # A server may publish its posts in announcement channels; a delivery keeps its publishing state,
    # and when Discord's per-channel limit lets it be published (so a restart publishes it then).
    # `bot_state`: what holds for the whole bot, e.g. posting stopped because the token was rejected.
    """
    ALTER TABLE guild_settings ADD COLUMN publish INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE channel_health ADD COLUMN blocked TEXT;  -- a permission missing now ('missing Embed Links')
    ALTER TABLE channel_health ADD COLUMN blocked_at TEXT;
    ALTER TABLE deliveries ADD COLUMN publish TEXT;      -- NULL, 'pending', 'published', 'refused', 'skipped'
    ALTER TABLE deliveries ADD COLUMN publish_at TEXT;   -- when a 'pending' one may be published
    CREATE INDEX deliveries_publish ON deliveries (publish_at) WHERE publish = 'pending';
    CREATE TABLE bot_state (
        key TEXT PRIMARY KEY,                          -- 'posting_halted'
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


async def migrate(db: aiosqlite.Connection) -> int:
    """Bring the database up to SCHEMA_VERSION, one transaction per step. Returns the version.

    Safe when several processes open a new database at once: a step another process applied first
    fails here on its own objects ("table already exists"), and is then found done and skipped.
    """
    while True:
        version = await user_version(db)
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"the database is at schema version {version}, newer than this chartbot ({SCHEMA_VERSION}); "
                "upgrade chartbot"
            )
        if version == SCHEMA_VERSION:
            return version
        step = MIGRATIONS[version]
        try:
            await db.executescript(f"BEGIN IMMEDIATE; {step}; PRAGMA user_version = {version + 1}; COMMIT;")
        except sqlite3.OperationalError:
            if db.in_transaction:
                await db.rollback()
            if await user_version(db) > version:
                continue  # another process took this step meanwhile
            raise


async def user_version(db: aiosqlite.Connection) -> int:
    rows = await db.execute_fetchall("PRAGMA user_version")
    return int(next(iter(rows))[0])
