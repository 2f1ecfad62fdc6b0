"""FlixPatrol daily "TOP 10" pages -> Snapshots.

Parse side: pure functions of the page's bytes, no I/O (fetching lives elsewhere in this module).
The layout has changed several times (notes/flixpatrol-pages.md); what survived every era is:
find each section by its heading text, take the first table after it in document order, read the rank
from a row's first cell and the title and slug from its first `/title/` link. Anything else (a
Cloudflare challenge, a 200 "Page Not Found", a section without exactly ten ranked rows) is a
`PageError`, never an empty or partial chart.

Trees are built with lxml.html directly: BeautifulSoup's tree building costs 20-30x more per page and is
only 1.3x faster with lxml than with html.parser (measured on the synthetic pages of
tests/flixpatrol_pages.py). BeautifulSoup (html.parser) is the fallback for documents lxml rejects.

Points: world pages show FlixPatrol's points (the first number after the title); they are read as
shown. Country pages show no points, so an entry gets 11 - rank (10 for No. 1 ... 1 for No. 10): that
is FlixPatrol's own scoring, so summing a title's points over the countries gives world-style points.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date as Date
from pathlib import Path
from typing import Any, TextIO

import lxml.html
from lxml import etree

from bot.model import (
    CHART_SIZE,
    WORLD,
    ChartError,
    ChartKey,
    Entry,
    InputError,
    Snapshot,
    check_date,
    make_snapshot,
)
from bot.regions import code_to_slug, resolve_region, slug_to_code
from bot.sources.http import FetchResult, HttpClient

SOURCE = "flixpatrol"
PERIOD = "day"
REPORT_HINT = "run `chartbot parse FILE --source flixpatrol` on the saved page and report the output"


class PageError(InputError):
    """A FlixPatrol page that holds no usable chart. `reason` is a short machine-readable tag:
    cloudflare, not-found, layout, missing-section, row-count, repeated-rank, bad-row, no-date,
    bad-date, no-region, mismatch."""

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Row:
    rank: int
    title: str
    slug: str  # FlixPatrol's title slug: /title/{slug}/
    figure: float | None  # the first number after the title cell: points on world pages


@dataclass(frozen=True, slots=True)
class Section:
    category: str  # movies, tv, overall
    heading: str  # as printed on the page
    rows: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class PageInfo:
    """What the page says about itself (canonical URL, <title>), each None when it does not say."""

    url: str | None
    service: str | None  # FlixPatrol's platform slug; "streaming" for the all-platforms page
    region: str | None  # region code
    date: Date | None
    title: str


@dataclass(frozen=True, slots=True)
class Page:
    info: PageInfo
    sections: tuple[Section, ...]


# --- public API ---------------------------------------------------------------------------------


def parse_page(
    html: bytes | str,
    *,
    service: str,
    region: str | None = None,
    date: Date | None = None,
    today: Date | None = None,
) -> list[Snapshot]:
    """Every chart of one service on a FlixPatrol page (movies, TV and/or overall; kids lists ignored).

    The date and region come from the page (canonical URL, else a dated <title>/heading); the
    arguments fill in what the page does not say and must agree with what it does say. A date before
    2000 or more than 7 days after `today` (default: today in UTC) is refused.
    """
    page = read_page(html, service=service)
    chart_region, chart_date = _chart_identity(page, service, region, date)
    try:
        check_date(chart_date, today=today)
    except InputError as exc:
        raise PageError(f"the chart's date {exc}; nothing was stored", reason="bad-date") from None
    return [_snapshot(section, service, chart_region, chart_date) for section in page.sections]


def read_page(html: bytes | str, *, service: str) -> Page:
    """The page's sections for `service`, rows as printed (with FlixPatrol's title slugs)."""
    text = _decode(html)
    _reject_challenge(text)
    root = _tree(text)
    _reject_not_found(root)
    return Page(_page_info(root), tuple(_sections(root, service)))


def page_info(html: bytes | str) -> PageInfo:
    """What a saved page says about itself: lets `chartbot parse FILE` find the service to ask for."""
    text = _decode(html)
    _reject_challenge(text)
    return _page_info(_tree(text))


def parse_result_json(snapshots: Iterable[Snapshot]) -> dict[str, Any]:
    """The `chartbot parse --json` document."""
    return {
        "charts": [
            {
                "service": s.key.service,
                "region": s.key.region,
                "category": s.key.category,
                "period": s.key.period,
                "date": s.key.date.isoformat(),
                "entries": [
                    {"rank": e.rank, "title": e.title, "title_key": e.title_key, "points": e.points}
                    for e in s.entries
                ],
            }
            for s in snapshots
        ]
    }


# --- whole-page checks --------------------------------------------------------------------------

# A challenge page, not the bot-management script Cloudflare also injects into normal pages
# (/cdn-cgi/challenge-platform/scripts/jsd/main.js). Plain substring tests: a regex over a 250 KB page
# would cost more than building its tree.
_CHALLENGE_MARKS = ("_cf_chl_opt", "/cdn-cgi/challenge-platform/h/", "cf-chl-")
_CHALLENGE_TITLE = re.compile(r"<title>\s*(?:just a moment|attention required)", re.IGNORECASE)


def _decode(html: bytes | str) -> str:
    if isinstance(html, str):
        return html
    try:
        return html.decode("utf-8")
    except UnicodeDecodeError:
        from bs4.dammit import UnicodeDammit  # only for the odd non-UTF-8 page

        return UnicodeDammit(html, is_html=True).unicode_markup or html.decode("cp1252", "replace")


def _reject_challenge(text: str) -> None:
    if any(mark in text for mark in _CHALLENGE_MARKS) or _CHALLENGE_TITLE.search(text, 0, 20_000):
        raise PageError(
            'FlixPatrol answered with a Cloudflare challenge page ("Just a moment..."), not a chart: '
            "plain HTTP clients are blocked. Set FLARESOLVERR_URL to a FlareSolverr endpoint "
            "(e.g. http://localhost:8191/v1) so pages are fetched through a real browser.",
            reason="cloudflare",
        )


def _tree(text: str) -> etree._Element:
    try:
        return lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        from lxml.html import soupparser  # BeautifulSoup with html.parser: slower, more forgiving

        return soupparser.fromstring(text)


def _reject_not_found(root: etree._Element) -> None:
    """Removed pages answer 200 with a "Page Not Found" page (its canonical URL may name anything)."""
    texts = [_text(el) for el in (root.find(".//title"), root.find(".//h1")) if el is not None]
    if any("page not found" in t.casefold() for t in texts):
        raise PageError(
            'FlixPatrol answered "Page Not Found": that chart does not exist (removed, or a wrong '
            "service, region or date). Check the service, region and date; nothing was stored.",
            reason="not-found",
        )


# --- what the page says about itself ------------------------------------------------------------

_TOP10_URL = re.compile(r"flixpatrol\.com/top10/")
_DAILY_URL = re.compile(
    r"flixpatrol\.com/top10/(?P<service>[a-z0-9-]+)/(?P<region>[a-z0-9-]+)(?:/(?P<date>\d{4}-\d{2}-\d{2}))?/?$"
)
_MONTHS = [
    *("january", "february", "march", "april", "may", "june"),
    *("july", "august", "september", "october", "november", "december"),
]
_LONG_DATE = re.compile(r"\b(" + "|".join(_MONTHS) + r") (\d{1,2}), (\d{4})\b")


def _page_info(root: etree._Element) -> PageInfo:
    url = _canonical_url(root)
    title_el, h1 = root.find(".//title"), root.find(".//h1")
    title = _text(title_el) if title_el is not None else ""
    service = region = day = None
    if url and _TOP10_URL.search(url):
        match = _DAILY_URL.search(url)
        if match is None:
            raise PageError(
                f"{url} is not a daily TOP 10 page (weekly, monthly and yearly pages are not read): "
                "save the page of one day, /top10/{service}/{country}/{YYYY-MM-DD}/",
                reason="mismatch",
            )
        service, region = match["service"], _region_from_slug(match["region"])
        day = Date.fromisoformat(match["date"]) if match["date"] else None
    day = day or _long_date(title) or (_long_date(_text(h1)) if h1 is not None else None)
    return PageInfo(url, service, region, day, title)


def _canonical_url(root: etree._Element) -> str | None:
    """<link rel="canonical">, else <meta property="og:url">, without query or fragment."""
    canonical = og_url = None
    for el in root.iter("link", "meta"):
        if el.tag == "link" and el.get("rel", "").casefold() == "canonical":
            canonical = canonical or el.get("href")
        elif el.get("property") == "og:url":
            og_url = og_url or el.get("content")
    url = (canonical or og_url or "").strip()
    return re.split(r"[?#]", url)[0] or None


def _region_from_slug(slug: str) -> str:
    try:
        return slug_to_code(slug)
    except InputError:
        raise PageError(
            f"the page is for FlixPatrol region {slug!r}, which chartbot does not know: "
            "add it to bot/regions.py (_SLUG_OVERRIDES)",
            reason="no-region",
        ) from None


def _long_date(text: str) -> Date | None:
    """The first long date in a text: ... on January 1, 2024 -> 2024-01-01."""
    match = _LONG_DATE.search(text.casefold())
    if not match:
        return None
    try:
        return Date(int(match[3]), _MONTHS.index(match[1]) + 1, int(match[2]))
    except ValueError:
        return None


def _chart_identity(page: Page, service: str, region: str | None, day: Date | None) -> tuple[str, Date]:
    """(region, date) from the page and the caller: either may say it, and they must agree."""
    info = page.info
    page_day = info.date or next(filter(None, (_long_date(s.heading) for s in page.sections)), None)
    if info.service not in (None, "streaming") and _service_key(info.service) != _service_key(service):
        raise _mismatch("service", info.service, service, info)
    region = resolve_region(region) if region else None
    if region and info.region and region != info.region:
        raise _mismatch("region", info.region, region, info)
    if day and page_day and day != page_day:
        raise _mismatch("date", page_day.isoformat(), day.isoformat(), info)
    region, day = region or info.region, day or page_day
    if region is None:
        raise PageError(
            "the page does not say its region (no canonical FlixPatrol URL): pass the region "
            "(e.g. --region us)",
            reason="no-region",
        )
    if day is None:
        raise PageError(
            "the page does not say its date (no dated canonical URL, title or heading): pass the "
            "chart date (e.g. --date 2024-01-01)",
            reason="no-date",
        )
    return region, day


def _mismatch(what: str, page: str, asked: str, info: PageInfo) -> PageError:
    return PageError(
        f"the page is for {what} {page} but {asked} was asked for ({info.url or 'no URL'}): FlixPatrol "
        "may have redirected to another chart; nothing was stored",
        reason="mismatch",
    )


# --- sections -----------------------------------------------------------------------------------

_HEADING_TAGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_KINDS = {
    "movies": "movies",
    "tv shows": "tv",
    "shows": "tv",
    "overall": "overall",
    "kids movies": "kids",
    "kids tv shows": "kids",
    "kids shows": "kids",
}
_DATE_PART = r"(?:" + "|".join(_MONTHS) + r") \d{1,2}, \d{4}"
# "TOP 10 Movies", "TOP TV Shows", "Top 10 TV Shows on Netflix on January 1, 2024", "TOP 10 Kids Movies"
_HEADING = re.compile(
    r"^top(?: 10)? (?P<kind>kids movies|kids tv shows|kids shows|movies|tv shows|shows|overall)"
    rf"(?: on (?!{_DATE_PART})(?P<service>.+?))?(?: in (?P<place>.+?))?(?: on (?P<date>{_DATE_PART}))?"
    r"(?: today| worldwide)?$"
)
_SERVICE_ALIASES = {
    "hbomax": "hbo",
    "max": "hbo",
    "disneyplus": "disney",
    "primevideo": "amazonprime",
    "amazonprimevideo": "amazonprime",
    "appletvplus": "appletv",
}


@dataclass(slots=True)
class _Claim:
    """A section heading of the wanted service, waiting for its table."""

    category: str
    heading: str
    level: int  # 2 for h2: a heading of the same or a higher level ends the section
    table: etree._Element | None = None


def _sections(root: etree._Element, service: str) -> Iterator[Section]:
    claims = _claim_tables(root, service) or _claim_by_id(root, service)
    if not claims:
        raise PageError(
            f"no TOP 10 Movies / TV Shows / Overall section for {service} on the page: FlixPatrol's "
            f"layout may have changed. Nothing was stored; {REPORT_HINT}.",
            reason="layout",
        )
    missing = [c.heading for c in claims if c.table is None]
    if missing:
        raise PageError(
            f"the section {missing[0]!r} has no table of its own before the next section: the layout may "
            f"have changed. Nothing was stored; {REPORT_HINT}.",
            reason="missing-section",
        )
    for claim in claims:
        if claim.table is not None:
            yield Section(claim.category, claim.heading, _rows(claim.table, claim.heading))


def _claim_tables(root: etree._Element, service: str) -> list[_Claim]:
    """Walk headings and tables in document order: a wanted heading takes the first table after it,
    unless a section ends first: at any recognised heading (any service, kids lists too) or at any
    heading of the same or a higher level ("No. 1 by country" after "TOP TV Shows")."""
    claims: list[_Claim] = []
    pending: _Claim | None = None
    for el in root.iter(*_HEADING_TAGS, "table"):
        if el.tag == "table":
            if pending is not None:
                pending.table, pending = el, None
            continue
        level = int(el.tag[1])
        heading = _text(el)
        category = _heading_category(heading, service)
        if pending is not None and (category is not None or level <= pending.level):
            pending = None
        if category is None or category in ("kids", "other") or any(c.category == category for c in claims):
            continue  # not a section of ours: kids lists, other services, a repeated heading
        pending = _Claim(category, heading, level)
        claims.append(pending)
    return claims


def _heading_category(heading: str, service: str) -> str | None:
    """movies / tv / overall for a section of `service`; kids; other (another service); None if no
    section heading."""
    match = _HEADING.match(" ".join(heading.split()).casefold())
    if not match:
        return None
    if match["service"] and _service_key(match["service"]) != _service_key(service):
        return "other"
    return _KINDS[match["kind"]]


def _service_key(name: str) -> str:
    """One key for FlixPatrol's slug and display name: "hbo-max", "HBO Max", "HBO" -> "hbo"."""
    key = re.sub(r"[^a-z0-9]", "", name.casefold().replace("+", "plus"))
    return _SERVICE_ALIASES.get(key, key)


_ID_CATEGORIES = {"1": "movies", "2": "tv", "movies": "movies", "tv-shows": "tv"}


def _claim_by_id(root: etree._Element, service: str) -> list[_Claim]:
    """Fallback for world pages whose heading text changed: div#netflix-1 / #toc-netflix-2 (notes)."""
    claims = []
    for suffix, category in _ID_CATEGORIES.items():
        for prefix in ("", "toc-"):
            found = root.xpath(f'//*[@id="{prefix}{service}-{suffix}"]')
            if found and not any(c.category == category for c in claims):
                table = next(found[0].iter("table"), None)
                claims.append(_Claim(category, f"#{prefix}{service}-{suffix}", 0, table))
    return claims


# --- rows ---------------------------------------------------------------------------------------

_TITLE_HREF = re.compile(r"^(?:https?://(?:www\.)?flixpatrol\.com)?/title/(?P<slug>[^/?#]+)")
_RANK = re.compile(r"^(\d{1,3})\.?$")
_NUMBER = re.compile(r"^\d{1,3}(?:[,.\u00a0\u202f ]\d{3})+$|^\d+$")


def _rows(table: etree._Element, heading: str) -> tuple[Row, ...]:
    rows = [row for tr in table.iter("tr") if (row := _row(tr, heading)) is not None]
    _check_rows(rows, heading)
    return tuple(rows)


def _row(tr: etree._Element, heading: str) -> Row | None:
    cells = [c for c in tr if c.tag in ("td", "th")]
    if not cells:
        return None
    rank_text = _text(cells[0])
    link = _title_link(tr)
    rank = _RANK.match(rank_text)
    if link is None and rank is None:
        return None  # a header, an ad or a "show more" row
    if link is None or rank is None:
        problem = "no /title/ link" if link is None else f"no rank in its first cell ({rank_text!r})"
        raise PageError(
            f"a row of {heading!r} has {problem}: the layout may have changed. Nothing was stored; "
            f"{REPORT_HINT}.",
            reason="bad-row",
        )
    slug_match = _TITLE_HREF.match(link.get("href", ""))
    assert slug_match is not None
    return Row(int(rank[1]), _text(link), slug_match["slug"], _figure_after(cells, link))


def _title_link(tr: etree._Element) -> etree._Element | None:
    """The first /title/ link with text (a poster may link to the title too, with only an image)."""
    for a in tr.iter("a"):
        if _TITLE_HREF.match(a.get("href", "")) and _text(a):
            return a
    return None


def _figure_after(cells: list[etree._Element], link: etree._Element) -> float | None:
    """The first plain number in a cell after the title's cell ("1,016" -> 1016)."""
    ancestors = set(link.iterancestors())
    after = False
    for cell in cells:
        if after:
            text = _text(cell)
            if _NUMBER.match(text):
                return float(re.sub(r"\D", "", text))
        elif cell in ancestors:
            after = True
    return None


def _check_rows(rows: list[Row], heading: str) -> None:
    if len(rows) != CHART_SIZE:
        raise PageError(
            f"the section {heading!r} has {len(rows)} ranked rows instead of {CHART_SIZE}: the page is "
            f"partial or its layout changed. Nothing was stored; try again later, and if it persists "
            f"{REPORT_HINT}.",
            reason="row-count",
        )
    seen: set[int] = set()
    for row in rows:
        if row.rank in seen:
            raise PageError(
                f"rank {row.rank} is repeated in {heading!r}: the chart is inconsistent. Nothing was "
                f"stored; {REPORT_HINT}.",
                reason="repeated-rank",
            )
        seen.add(row.rank)
    if seen != set(range(1, CHART_SIZE + 1)):
        raise PageError(
            f"the ranks of {heading!r} are {sorted(seen)}, not 1..{CHART_SIZE}. Nothing was stored; "
            f"{REPORT_HINT}.",
            reason="bad-row",
        )


# --- snapshots ----------------------------------------------------------------------------------


def _snapshot(section: Section, service: str, region: str, day: Date) -> Snapshot:
    key = ChartKey(SOURCE, service, region, section.category, PERIOD, day)
    points = _points(section, region)
    try:
        entries = [Entry.make(r.rank, r.title, points=p) for r, p in zip(section.rows, points, strict=True)]
        return make_snapshot(key, entries)
    except ChartError as exc:
        raise PageError(f"{section.heading!r}: {exc}", reason="bad-row") from None
    except InputError as exc:
        raise PageError(f"a row of {section.heading!r}: {exc}", reason="bad-row") from None


def _points(section: Section, region: str) -> list[float]:
    """Points as shown on world pages; 11 - rank where the page shows none (see the module docstring)."""
    shown = [r.figure for r in section.rows]
    if region == WORLD and all(f is not None for f in shown):
        return [f for f in shown if f is not None]
    if region == WORLD and any(f is not None for f in shown):
        raise PageError(
            f"only some rows of {section.heading!r} show points: the layout may have changed. "
            f"Nothing was stored; {REPORT_HINT}.",
            reason="bad-row",
        )
    return [float(CHART_SIZE + 1 - r.rank) for r in section.rows]


def _text(el: etree._Element) -> str:
    return " ".join(el.text_content().split())


# --- fetching -----------------------------------------------------------------------------------
# One daily page per service and region: /top10/{service}/{country-slug}/{YYYY-MM-DD}/. Since mid-2026
# plain clients get a Cloudflare challenge, so with FLARESOLVERR_URL set pages go through that browser.

# The countries Netflix publishes weekly charts for (all-weeks-countries.tsv): FlixPatrol has pages for
# all of them, and they make the aggregates of both sources comparable.
NETFLIX_COUNTRIES = (
    *("ae", "ar", "at", "au", "bd", "be", "bg", "bh", "bo", "br", "bs", "ca", "ch", "cl", "co", "cr"),
    *("cy", "cz", "de", "dk", "do", "ec", "ee", "eg", "es", "fi", "fr", "gb", "gp", "gr", "gt", "hk"),
    *("hn", "hr", "hu", "id", "ie", "il", "in", "is", "it", "jm", "jo", "jp", "ke", "kr", "kw", "lb"),
    *("lk", "lt", "lu", "lv", "ma", "mq", "mt", "mu", "mv", "mx", "my", "nc", "ng", "ni", "nl", "no"),
    *("nz", "om", "pa", "pe", "ph", "pk", "pl", "pt", "py", "qa", "re", "ro", "rs", "ru", "sa", "se"),
    *("sg", "si", "sk", "sv", "th", "tr", "tt", "tw", "ua", "us", "uy", "ve", "vn", "za"),
)
DEFAULT_REGIONS = (WORLD, *NETFLIX_COUNTRIES)


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """One page as fetched: `snapshots` is None when the server said 304 (nothing changed)."""

    service: str
    region: str
    date: Date
    result: FetchResult
    snapshots: list[Snapshot] | None

    @property
    def rows(self) -> int:
        return sum(len(s.entries) for s in self.snapshots or ())


def page_label(service: str, region: str) -> str:
    """How health reports name a page: netflix/us."""
    return f"{service}/{region}"


def page_url(base_url: str, service: str, region: str, day: Date) -> str:
    return f"{base_url.rstrip('/')}/top10/{service}/{code_to_slug(region)}/{day.isoformat()}/"


async def fetch_page(
    http: HttpClient, base_url: str, service: str, region: str, day: Date, *, browser: bool = False
) -> FetchedPage:
    """GET one daily page (through FlareSolverr with `browser`) and parse it off the event loop.

    The chart's date and region are read from the page and must be the ones asked for. Validators are
    not remembered here (see netflix.fetch_file). Raises FetchError, or PageError for a page that holds
    no complete chart: a challenge, "Page Not Found", a missing section, a row count other than ten.
    """
    result = await http.get(page_url(base_url, service, region, day), browser=browser, remember=False)
    if result.not_modified or result.body is None:
        return FetchedPage(service, region, day, result, None)
    snapshots = await asyncio.to_thread(parse_page, result.body, service=service, region=region, date=day)
    if not snapshots:  # parse_page raises first; an empty chart must never be stored as one
        raise PageError(f"{result.url}: the page parsed to no chart", reason="layout")
    return FetchedPage(service, region, day, result, snapshots)


# --- `chartbot parse FILE --source flixpatrol` ------------------------------------------------------


def parse_main(
    path: Path | str,
    source: str,
    as_json: bool,
    out: TextIO,
    *,
    service: str | None = None,
    region: str | None = None,
    date: Date | None = None,
) -> int:
    """Show what the parser reads from a saved page. Raises InputError (with the parser's own message)
    for a page it refuses; the command line prints that on one line and exits 2."""
    if source != SOURCE:
        raise InputError(f"parse reads saved {SOURCE} pages only, not {source!r}")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    html = path.read_bytes()
    info = page_info(html)
    service = service or (info.service if info.service not in (None, "streaming") else "netflix")
    assert service is not None
    snapshots = parse_page(html, service=service, region=region, date=date)
    if as_json:
        document = parse_result_json(snapshots) | {"url": info.url, "title": info.title}
        out.write(json.dumps(document, ensure_ascii=False) + "\n")
        return 0
    page = read_page(html, service=service)
    first = snapshots[0].key
    out.write(f"{path.name}: {info.url or 'no canonical URL'}\n")
    out.write(f"service {service} · region {first.region} · date {first.date.isoformat()}\n")
    for section, snapshot in zip(page.sections, snapshots, strict=True):
        out.write(f"\n{section.heading}  [{section.category}]\n")
        names = [e.title + (f" ({e.season})" if e.season else "") for e in snapshot.entries]
        width = max(map(len, names))
        for row, entry, name in zip(section.rows, snapshot.entries, names, strict=True):
            points = f"{entry.points:>9,.0f}  " if entry.points is not None else ""
            out.write(f"{row.rank:>4}. {name:<{width}}  {points}/title/{row.slug}/\n")
    return 0
