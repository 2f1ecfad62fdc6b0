"""SYNTHETIC FlixPatrol pages for tests and benchmarks, one layout per era of notes/flixpatrol-pages.md.

No real flixpatrol.com page was ever saved: these pages are built from the selectors that public
scrapers used at known dates (ids, heading texts, Tailwind classes, row shapes), wrapped in the kind
of page furniture a real page carries (navigation, scripts, a sidebar table before the first heading,
a countries table after the charts) so that a parser cannot get away with "the first table".
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from datetime import date

from bot.regions import code_to_slug, region_name, region_phrase

ERAS = ("2021-2023", "2023-2024", "2025-02", "2025-11", "streaming")

SYNTHETIC_NOTE = (
    "<!-- SYNTHETIC page, hand-written from the selectors in notes/flixpatrol-pages.md "
    "(layout era: {era}); not a saved real flixpatrol.com page. -->\n"
)

_SERVICE_NAMES = {
    "netflix": "Netflix",
    "hbo": "HBO",
    "hbo-max": "HBO Max",
    "disney": "Disney+",
    "amazon-prime": "Amazon Prime",
    "apple-tv": "Apple TV+",
    "paramount-plus": "Paramount+",
    "hulu": "Hulu",
}

_SIDEBAR_TITLES = (
    "Wednesday",
    "Stranger Things",
    "Squid Game",
    "Bridgerton",
    "The Witcher",
    "Money Heist",
    "Red Notice",
    "Extraction 2",
    "Glass Onion: A Knives Out Mystery",
    "The Night Agent",
)

# The streaming page (all platforms on one page) also shows another service; these are its titles.
_HBO_MOVIES = tuple(f"HBO Movie {n}" for n in range(1, 11))
_HBO_TV = (
    "The Last of Us",
    "House of the Dragon",
    "Succession",
    "The White Lotus",
    "True Detective",
    "Euphoria",
    "The Gilded Age",
    "Curb Your Enthusiasm",
    "Hacks",
    "The Penguin",
)


def points_for(rank: int) -> int:
    """The points the synthetic world pages show for a rank (deterministic, falling with rank)."""
    return round(1200 * 0.8 ** (rank - 1)) + 17


def title_slug(title: str) -> str:
    """A FlixPatrol-like title slug: "Pokémon Concierge" -> "pokemon-concierge"."""
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower().replace("'", "")
    return "-".join(re.findall(r"[a-z0-9]+", text))


def long_date(day: date) -> str:
    return f"{day:%B} {day.day}, {day.year}"


def render_page(
    era: str,
    *,
    region: str,
    date: date,
    movies: Sequence[str],
    tv: Sequence[str],
    points: bool,
    service: str = "netflix",
    overall: Sequence[str] = (),
    kids: bool = False,
    canonical: bool = True,
) -> str:
    """A whole synthetic page. An empty list leaves its section out; `kids` adds the Kids lists that
    dated Netflix country pages show; `canonical=False` drops the canonical and og:url links."""
    if era not in ERAS:
        raise ValueError(f"unknown era {era!r}; one of {ERAS}")
    world = region == "world"
    page_service = "streaming" if era == "streaming" else service
    url = f"https://flixpatrol.com/top10/{page_service}/{code_to_slug(region)}/{date.isoformat()}/"
    where = "in the World" if world else f"in {region_phrase(region, short=False, flag=False)}"
    if era == "streaming":
        title = f"TOP 10 on Streaming {where} on {long_date(date)} • FlixPatrol"
    else:
        title = f"TOP 10 on {_SERVICE_NAMES.get(service, service)} {where} on {long_date(date)} • FlixPatrol"
    body = _BODY[era](
        _Charts(service, world, date, movies, tv, overall, points and world, kids and not world),
    )
    return (
        SYNTHETIC_NOTE.format(era=era)
        + _head(title, url if canonical else None)
        + _header()
        + '<div class="flex flex-col lg:flex-row gap-8 px-4 max-w-screen-2xl mx-auto">\n'
        + _sidebar()
        + '<main class="flex-1 min-w-0">\n'
        + f'<h1 class="mb-3 text-3xl font-bold text-gray-100">{html.escape(title.split(" • ")[0])}</h1>\n'
        + body
        + (_countries_table(service) if world else "")
        + "</main>\n</div>\n"
        + _footer()
    )


class _Charts:
    """What one page shows, passed to the era's body renderer."""

    def __init__(
        self,
        service: str,
        world: bool,
        day: date,
        movies: Sequence[str],
        tv: Sequence[str],
        overall: Sequence[str],
        points: bool,
        kids: bool,
    ) -> None:
        self.service = service
        self.world = world
        self.day = day
        self.movies = list(movies)
        self.tv = list(tv)
        self.overall = list(overall)
        self.points = points
        self.kids = kids

    def sections(self) -> list[tuple[str, str, list[str]]]:
        """(kind, heading, titles) for each non-empty list."""
        out = [
            ("movies", "Movies", self.movies),
            ("tv", "TV Shows", self.tv),
            ("overall", "Overall", self.overall),
        ]
        return [s for s in out if s[2]]

    def kids_sections(self) -> list[tuple[str, list[str]]]:
        if not self.kids:
            return []
        return [
            ("Kids Movies", ["Leo", "Matilda", "Minions: The Rise of Gru", "Sing 2", "Hotel Transylvania"]),
            ("Kids TV Shows", ["Cocomelon", "Gabby's Dollhouse", "Bluey", "Ms. Rachel", "Pokémon"]),
        ]


# --- page furniture -------------------------------------------------------------------------------


def _head(title: str, url: str | None) -> str:
    links = f'<link rel="canonical" href="{url}">\n<meta property="og:url" content="{url}">\n' if url else ""
    return f"""<!DOCTYPE html>
<html lang="en" class="scroll-smooth">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<meta name="description" content="Daily updated TOP 10 charts of the most popular movies and TV shows.">
{links}<meta property="og:title" content="{html.escape(title)}">
<meta property="og:type" content="website">
<meta property="og:image" content="https://flixpatrol.com/static/og/flixpatrol.png">
<link rel="stylesheet" href="/build/app.3f9c2a1b.css">
<link rel="preconnect" href="https://fonts.gstatic.com" crossorigin>
<link rel="icon" type="image/png" href="/favicon-32x32.png" sizes="32x32">
<script async src="https://www.googletagmanager.com/gtag/js?id=G-SYNTHETIC1"></script>
<script>
  window.dataLayer = window.dataLayer || [];
  function gtag(){{dataLayer.push(arguments);}}
  gtag('js', new Date()); gtag('config', 'G-SYNTHETIC1', {{ 'anonymize_ip': true }});
  if (window.innerWidth < 640) {{ document.documentElement.classList.add('m'); }}
</script>
<script type="application/ld+json">{{"@context":"https://schema.org","@type":"BreadcrumbList",
"itemListElement":[{{"@type":"ListItem","position":1,"name":"FlixPatrol","item":"https://flixpatrol.com/"}},
{{"@type":"ListItem","position":2,"name":"TOP 10","item":"https://flixpatrol.com/top10/"}}]}}</script>
<script defer src="/build/alpine.5d1e0f.js"></script>
</head>
<body class="bg-gray-900 text-gray-300 antialiased font-sans" x-data="{{ menu: false }}">
"""


_NAV_PLATFORMS = (
    "netflix",
    "hbo-max",
    "disney",
    "amazon-prime",
    "apple-tv",
    "paramount-plus",
    "hulu",
    "peacock",
    "crunchyroll",
    "viaplay",
    "canal",
    "rakuten-tv",
    "itunes",
    "google",
    "starz",
    "now",
)


def _icon() -> str:
    return (
        '<svg class="w-4 h-4 fill-current" viewBox="0 0 20 20" aria-hidden="true">'
        '<path d="M10 3a7 7 0 100 14 7 7 0 000-14zm0 2a5 5 0 110 10 5 5 0 010-10z"/></svg>'
    )


def _header() -> str:
    links = "\n".join(
        f'<li><a class="block px-3 py-2" href="/top10/{p}/">{_SERVICE_NAMES.get(p, p)}</a></li>'
        for p in _NAV_PLATFORMS
    )
    return f"""<header class="sticky top-0 z-40 bg-gray-900/95 backdrop-blur border-b border-gray-800">
<nav class="flex items-center justify-between h-16 px-4 max-w-screen-2xl mx-auto">
<a href="/" class="flex items-center gap-2 text-white font-bold">{_icon()}<span>FlixPatrol</span></a>
<ul class="hidden lg:flex items-center gap-1 text-sm">
<li><a class="block px-3 py-2" href="/top10/">TOP 10</a></li>
<li><a class="block px-3 py-2" href="/popular/">Popular</a></li>
<li><a class="block px-3 py-2" href="/calendar/">Calendar</a></li>
<li><a class="block px-3 py-2" href="/hours/">Most Watched</a></li>
<li x-data="{{ open: false }}" class="relative"><button @click="open = !open">Platforms {_icon()}</button>
<ul x-show="open" class="absolute mt-2 w-56 rounded-md bg-gray-800 shadow-lg">
{links}
</ul></li>
</ul>
<form action="/search/" method="get" class="hidden md:block"><input type="search" name="q"
 placeholder="Search movies and TV shows" class="w-64 rounded bg-gray-800 px-3 py-1.5 text-sm"></form>
</nav>
</header>
"""


def _sidebar() -> str:
    """A table of links to titles BEFORE any chart heading: a parser must not borrow it."""
    rows = "\n".join(
        f'<tr class="table-group"><td class="table-td w-8 text-gray-500">{n}.</td>'
        f'<td class="table-td">{_title_link(t, False)}</td>'
        f'<td class="table-td w-12 text-right">{(11 - n) * 1234:,}</td></tr>'
        for n, t in enumerate(_SIDEBAR_TITLES, 1)
    )
    return f"""<aside class="hidden lg:block w-72 flex-none">
<div class="card mb-6"><div class="px-4 py-3 text-sm font-semibold text-gray-200">Popular today</div>
<table class="card-table w-full text-sm"><tbody class="tabular-nums">
{rows}
</tbody></table></div>
<div class="card"><div class="px-4 py-3 text-sm">Follow FlixPatrol on social media {_icon()}</div></div>
</aside>
"""


def _countries_table(service: str) -> str:
    """World pages list every country's No. 1 below the charts: more tables after the sections."""
    codes = ("us", "gb", "de", "fr", "kr", "jp", "br", "mx", "in", "es", "it", "ca", "au", "pl", "tr")
    rows = "\n".join(
        f'<tr class="table-group"><td class="table-td w-8">{n}.</td>'
        f'<td class="table-td"><a href="/top10/{service}/{code_to_slug(c)}/">{region_name(c)}</a></td>'
        f'<td class="table-td">{_title_link(t, False)}</td></tr>'
        for n, (c, t) in enumerate(zip(codes * 6, _SIDEBAR_TITLES * 9, strict=False), 1)
    )
    return f"""<div class="content mt-12" id="countries">
<h2 class="mb-4 text-2xl font-semibold text-gray-200">No. 1 by country</h2>
<div class="card"><table class="card-table w-full"><tbody class="tabular-nums">
{rows}
</tbody></table></div></div>
"""


def _footer() -> str:
    return f"""<footer class="mt-16 border-t border-gray-800 py-8 text-sm text-gray-500">
<div class="max-w-screen-2xl mx-auto px-4 flex flex-wrap gap-6">
<a href="/about/">About</a><a href="/api/">API</a><a href="/privacy/">Privacy policy</a>
<a href="/terms/">Terms of use</a><a href="/contact/">Contact</a>
<span>© FlixPatrol {_icon()}</span>
</div>
</footer>
<script src="/cdn-cgi/challenge-platform/scripts/jsd/main.js" defer></script>
<script>document.addEventListener('alpine:init', () => Alpine.store('toc', {{ open: false }}));</script>
</body>
</html>
"""


# --- rows, one style per era -----------------------------------------------------------------------


def _title_link(title: str, nested: bool) -> str:
    slug, text = title_slug(title), html.escape(title)
    if not nested:
        return f'<a class="hover:underline" href="/title/{slug}/">{text}</a>'
    return (
        f'<a class="flex gap-2 group items-center" href="/title/{slug}/">'
        f'<div class="flex-none w-10"><picture><img class="rounded" src="/static/p/{slug}.webp" alt="" '
        f'loading="lazy"></picture></div><div class="hover:underline group-hover:underline">{text}</div></a>'
    )


def _rows_2021(titles: list[str], points: bool) -> str:
    cells = []
    for n, t in enumerate(titles, 1):
        pts = f'<td class="table-td w-20 text-right">{points_for(n):,}</td>' if points else ""
        cells.append(
            f'<tr class="table-group"><td class="table-td w-12">{n}.</td>'
            f'<td class="table-td w-1/2">{_title_link(t, False)}</td>{pts}'
            f'<td class="table-td w-8 text-gray-500">–</td></tr>'
        )
    return "\n".join(cells)


def _rows_2023(titles: list[str], points: bool, world: bool) -> str:
    rank_cls = "table-td w-12 font-semibold text-right text-gray-500 table-hover:text-gray-400"
    cells = []
    for n, t in enumerate(titles, 1):
        change = '<td class="table-td w-6"><span class="text-green-500">+1</span></td>'
        pts = (
            f'<td class="table-td w-12 text-right text-gray-400 font-semibold">{points_for(n)}</td>'
            if points
            else ""
        )
        days = "" if world else f'<td class="table-td w-12 text-right">{n + 3}</td>'
        cells.append(
            f'<tr class="table-group"><td class="{rank_cls}">{n}.</td>{change}'
            f'<td class="table-td w-1/2">{_title_link(t, False)}</td>{pts}{days}</tr>'
        )
    return "\n".join(cells)


def _rows_2025(titles: list[str], points: bool) -> str:
    cells = []
    for n, t in enumerate(titles, 1):
        pts = f'<td class="table-td w-16 text-right font-semibold">{points_for(n):,}</td>' if points else ""
        cells.append(
            f'<tr class="table-group"><td class="table-td w-10 text-right text-gray-500">{n}.</td>'
            f'<td class="table-td w-6">{_icon()}</td>'
            f'<td class="table-td">{_title_link(t, True)}</td>{pts}'
            f'<td class="table-td w-16 text-right text-gray-500">{n * 2} d</td></tr>'
        )
    return "\n".join(cells)


def _table(rows: str) -> str:
    return (
        '<table class="card-table w-full"><thead><tr><th class="sr-only">Rank</th>'
        '<th class="sr-only">Title</th></tr></thead>\n'
        f'<tbody class="tabular-nums">\n{rows}\n</tbody></table>'
    )


def _kids(c: _Charts) -> str:
    """Kids lists (dated Netflix country pages): h3 in a div whose next sibling is the table."""
    return "".join(
        f'<div class="mb-14"><div class="flex items-center"><h3 class="text-lg font-semibold">TOP 10 {h}</h3>'
        f"</div>\n{_table(_rows_2023(titles, False, False))}</div>\n"
        for h, titles in c.kids_sections()
    )


# --- one body per era ------------------------------------------------------------------------------


def _body_2021(c: _Charts) -> str:
    out = []
    for n, (_kind, heading, titles) in enumerate(c.sections(), 1):
        table = _table(_rows_2021(titles, c.points))
        if c.world:
            out.append(
                f'<div class="content mb-14" id="{c.service}-{n}">\n'
                f'<div class="flex items-center justify-between mb-4"><h2 class="text-2xl font-semibold '
                f'text-gray-200">TOP 10 {heading}</h2><a class="text-sm" href="#">Full list</a></div>\n'
                f'<div class="card">{table}</div></div>\n'
            )
        else:
            out.append(
                f'<div class="content mb-14"><h3 class="mb-4 text-lg font-semibold text-gray-200">TOP 10 '
                f'{heading}</h3>\n<div class="w-full"><div class="card">{table}</div></div></div>\n'
            )
    return "".join(out) + _kids(c)


def _body_2023(c: _Charts) -> str:
    out = []
    for n, (_kind, heading, titles) in enumerate(c.sections(), 1):
        table = _table(_rows_2023(titles, c.points, c.world))
        if c.world:
            out.append(
                f'<div class="content mb-14" id="{c.service}-{n}">\n<div class="flex items-baseline gap-3 '
                f'mb-4"><h2 class="text-2xl font-semibold">TOP 10 {heading}</h2>'
                f'<span class="text-sm text-gray-500">{long_date(c.day)}</span></div>\n'
                f'<div class="card -mx-content">{table}</div></div>\n'
            )
        else:
            out.append(
                f'<div class="mb-14"><h3 class="mb-4 text-lg font-semibold">TOP 10 {heading}</h3>\n'
                f'<div class="card -mx-content">{table}</div></div>\n'
            )
        if n == 1:
            out.append(_kids(c))
    return "".join(out)


def _body_2025_02(c: _Charts) -> str:
    out = []
    for n, (_kind, heading, titles) in enumerate(c.sections(), 1):
        table = _table(_rows_2025(titles, c.points))
        if c.world:
            out.append(
                f'<div class="content mb-14 scroll-mt-20" id="toc-{c.service}-{n}">\n'
                f'<div class="flex items-center gap-2 mb-4">{_icon()}<h2 class="text-2xl font-semibold">'
                f'TOP 10 {heading}</h2></div>\n<div class="card"><div class="overflow-x-auto">{table}'
                "</div></div></div>\n"
            )
        else:
            out.append(
                f'<div class="mb-4"><div class="flex items-center justify-between"><h3 class="text-lg '
                f'font-semibold">TOP 10 {heading}</h3><span class="text-xs">{long_date(c.day)}</span></div>'
                f'</div>\n<div class="card mb-14"><div class="overflow-x-auto">{table}</div></div>\n'
            )
    return "".join(out) + _kids(c)


def _body_2025_11(c: _Charts) -> str:
    out = []
    for _kind, heading, titles in c.sections():
        table = _table(_rows_2025(titles, c.points))
        if c.world:
            label = "TOP Overall" if heading == "Overall" else f"TOP {heading}"
            out.append(
                '<div class="mb-14"><div class="flex items-center justify-between mb-4">'
                f'<h2 class="flex items-center gap-2 text-2xl">{_icon()}<span>{label}</span></h2>'
                f'<a class="text-sm" href="#">Full list</a></div>\n<div class="card">{table}</div></div>\n'
            )
        else:
            out.append(
                f'<div class="mb-14"><div class="flex items-center"><h3 class="text-lg font-semibold">TOP 10 '
                f'{heading}</h3></div>\n<div class="card">{table}</div></div>\n'
            )
    return "".join(out) + _kids(c)


def _body_streaming(c: _Charts) -> str:
    """All platforms on one page: "Top 10 TV Shows on Netflix on January 1, 2024" in toc-* ids."""
    blocks = [(c.service, c.movies, c.tv), ("hbo", list(_HBO_MOVIES), list(_HBO_TV))]
    out = []
    for service, movies, tv in blocks:
        name = _SERVICE_NAMES.get(service, service)
        for kind, heading, titles in (("movies", "Movies", movies), ("tv-shows", "TV Shows", tv)):
            if not titles:
                continue
            table = _table(_rows_2023(titles, c.points, c.world))
            out.append(
                f'<div class="content mb-14 scroll-mt-20" id="toc-{service}-{kind}">\n'
                f'<h2 class="mb-4 text-2xl">Top 10 {heading} on {name} on {long_date(c.day)}</h2>\n'
                f'<div class="card">{table}</div></div>\n'
            )
    return "".join(out)


_BODY = {
    "2021-2023": _body_2021,
    "2023-2024": _body_2023,
    "2025-02": _body_2025_02,
    "2025-11": _body_2025_11,
    "streaming": _body_streaming,
}
