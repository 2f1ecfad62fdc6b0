"""Countries and territories: codes, the names fans use, flags and FlixPatrol's URL slugs. No I/O.

A region is `world` or an ISO 3166-1 alpha-2 code in lower case. Names are the common English ones
that news and Netflix's own country list use ("South Korea", "Taiwan", "Czech Republic"), not the
formal ISO names; the formal or older names are aliases for `resolve_region`, and so are the names in
chartbot's other languages (CLDR's, as bot.i18n.formats writes them: "대한민국", "Corée du Sud").
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from bot.i18n import ENGLISH, LOCALES, SOURCE, Messages, translator
from bot.model import WORLD, InputError

WORLD_FLAG = "🌍"
WORLD_NAME = "Worldwide"


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    the: bool  # "the Netherlands": the name takes "the" inside a sentence
    short: str | None  # "U.S.": the form news uses, when it has one
    slug: str  # FlixPatrol URL segment: /top10/netflix/{slug}/


# code, name, takes "the", short form, aliases (other names people type; matched case/accent-blind).
# XK (Kosovo) is a user-assigned code, not ISO, but in common use and FlixPatrol charts it.
_TABLE: tuple[tuple[str, str, bool, str | None, tuple[str, ...]], ...] = (
    ("ad", "Andorra", False, None, ()),
    ("ae", "United Arab Emirates", True, "UAE", ("Emirates", "U.A.E.")),
    ("af", "Afghanistan", False, None, ()),
    ("ag", "Antigua and Barbuda", False, None, ("Antigua",)),
    ("ai", "Anguilla", False, None, ()),
    ("al", "Albania", False, None, ()),
    ("am", "Armenia", False, None, ()),
    ("ao", "Angola", False, None, ()),
    ("aq", "Antarctica", False, None, ()),
    ("ar", "Argentina", False, None, ()),
    ("as", "American Samoa", False, None, ()),
    ("at", "Austria", False, None, ()),
    ("au", "Australia", False, None, ()),
    ("aw", "Aruba", False, None, ()),
    ("ax", "Åland Islands", True, None, ("Aland",)),
    ("az", "Azerbaijan", False, None, ()),
    ("ba", "Bosnia and Herzegovina", False, None, ("Bosnia",)),
    ("bb", "Barbados", False, None, ()),
    ("bd", "Bangladesh", False, None, ()),
    ("be", "Belgium", False, None, ()),
    ("bf", "Burkina Faso", False, None, ()),
    ("bg", "Bulgaria", False, None, ()),
    ("bh", "Bahrain", False, None, ()),
    ("bi", "Burundi", False, None, ()),
    ("bj", "Benin", False, None, ()),
    ("bl", "Saint Barthélemy", False, None, ("St. Barts", "St Barths", "Saint Barthelemy")),
    ("bm", "Bermuda", False, None, ()),
    ("bn", "Brunei", False, None, ("Brunei Darussalam",)),
    ("bo", "Bolivia", False, None, ()),
    ("bq", "Caribbean Netherlands", True, None, ("Bonaire", "Bonaire, Sint Eustatius and Saba")),
    ("br", "Brazil", False, None, ("Brasil",)),
    ("bs", "Bahamas", True, None, ()),
    ("bt", "Bhutan", False, None, ()),
    ("bv", "Bouvet Island", False, None, ()),
    ("bw", "Botswana", False, None, ()),
    ("by", "Belarus", False, None, ()),
    ("bz", "Belize", False, None, ()),
    ("ca", "Canada", False, None, ()),
    ("cc", "Cocos (Keeling) Islands", True, None, ("Cocos Islands", "Keeling Islands")),
    ("cd", "DR Congo", False, "DRC", ("Democratic Republic of the Congo", "Congo-Kinshasa", "Zaire")),
    ("cf", "Central African Republic", True, "CAR", ()),
    ("cg", "Republic of the Congo", True, None, ("Congo", "Congo-Brazzaville")),
    ("ch", "Switzerland", False, None, ()),
    ("ci", "Ivory Coast", False, None, ("Côte d'Ivoire", "Cote d Ivoire")),
    ("ck", "Cook Islands", True, None, ()),
    ("cl", "Chile", False, None, ()),
    ("cm", "Cameroon", False, None, ()),
    ("cn", "China", False, None, ("Mainland China", "PRC")),
    ("co", "Colombia", False, None, ()),
    ("cr", "Costa Rica", False, None, ()),
    ("cu", "Cuba", False, None, ()),
    ("cv", "Cape Verde", False, None, ("Cabo Verde",)),
    ("cw", "Curaçao", False, None, ()),
    ("cx", "Christmas Island", False, None, ()),
    ("cy", "Cyprus", False, None, ()),
    ("cz", "Czech Republic", True, None, ("Czechia",)),
    ("de", "Germany", False, None, ("Deutschland",)),
    ("dj", "Djibouti", False, None, ()),
    ("dk", "Denmark", False, None, ()),
    ("dm", "Dominica", False, None, ()),
    ("do", "Dominican Republic", True, None, ()),
    ("dz", "Algeria", False, None, ()),
    ("ec", "Ecuador", False, None, ()),
    ("ee", "Estonia", False, None, ()),
    ("eg", "Egypt", False, None, ()),
    ("eh", "Western Sahara", False, None, ()),
    ("er", "Eritrea", False, None, ()),
    ("es", "Spain", False, None, ("España",)),
    ("et", "Ethiopia", False, None, ()),
    ("fi", "Finland", False, None, ()),
    ("fj", "Fiji", False, None, ()),
    ("fk", "Falkland Islands", True, None, ("Falklands", "Malvinas")),
    ("fm", "Micronesia", False, None, ("Federated States of Micronesia",)),
    ("fo", "Faroe Islands", True, None, ("Faroes",)),
    ("fr", "France", False, None, ()),
    ("ga", "Gabon", False, None, ()),
    (
        "gb",
        "United Kingdom",
        True,
        "U.K.",
        ("UK", "Britain", "Great Britain", "England", "Scotland", "Wales", "Northern Ireland"),
    ),
    ("gd", "Grenada", False, None, ()),
    ("ge", "Georgia", False, None, ()),
    ("gf", "French Guiana", False, None, ()),
    ("gg", "Guernsey", False, None, ()),
    ("gh", "Ghana", False, None, ()),
    ("gi", "Gibraltar", False, None, ()),
    ("gl", "Greenland", False, None, ()),
    ("gm", "Gambia", True, None, ()),
    ("gn", "Guinea", False, None, ()),
    ("gp", "Guadeloupe", False, None, ()),
    ("gq", "Equatorial Guinea", False, None, ()),
    ("gr", "Greece", False, None, ()),
    ("gs", "South Georgia and the South Sandwich Islands", False, None, ("South Georgia",)),
    ("gt", "Guatemala", False, None, ()),
    ("gu", "Guam", False, None, ()),
    ("gw", "Guinea-Bissau", False, None, ()),
    ("gy", "Guyana", False, None, ()),
    ("hk", "Hong Kong", False, None, ()),
    ("hm", "Heard Island and McDonald Islands", False, None, ()),
    ("hn", "Honduras", False, None, ()),
    ("hr", "Croatia", False, None, ("Hrvatska",)),
    ("ht", "Haiti", False, None, ()),
    ("hu", "Hungary", False, None, ()),
    ("id", "Indonesia", False, None, ()),
    ("ie", "Ireland", False, None, ("Republic of Ireland", "Eire")),
    ("il", "Israel", False, None, ()),
    ("im", "Isle of Man", True, None, ()),
    ("in", "India", False, None, ()),
    ("io", "British Indian Ocean Territory", True, None, ("Chagos Islands",)),
    ("iq", "Iraq", False, None, ()),
    ("ir", "Iran", False, None, ()),
    ("is", "Iceland", False, None, ()),
    ("it", "Italy", False, None, ("Italia",)),
    ("je", "Jersey", False, None, ()),
    ("jm", "Jamaica", False, None, ()),
    ("jo", "Jordan", False, None, ()),
    ("jp", "Japan", False, None, ()),
    ("ke", "Kenya", False, None, ()),
    ("kg", "Kyrgyzstan", False, None, ()),
    ("kh", "Cambodia", False, None, ()),
    ("ki", "Kiribati", False, None, ()),
    ("km", "Comoros", True, None, ()),
    ("kn", "Saint Kitts and Nevis", False, None, ("St. Kitts and Nevis", "St Kitts")),
    ("kp", "North Korea", False, None, ("DPRK",)),
    ("kr", "South Korea", False, None, ("Korea", "Republic of Korea", "ROK")),
    ("kw", "Kuwait", False, None, ()),
    ("ky", "Cayman Islands", True, None, ("Caymans",)),
    ("kz", "Kazakhstan", False, None, ()),
    ("la", "Laos", False, None, ("Lao",)),
    ("lb", "Lebanon", False, None, ()),
    ("lc", "Saint Lucia", False, None, ("St. Lucia",)),
    ("li", "Liechtenstein", False, None, ()),
    ("lk", "Sri Lanka", False, None, ()),
    ("lr", "Liberia", False, None, ()),
    ("ls", "Lesotho", False, None, ()),
    ("lt", "Lithuania", False, None, ()),
    ("lu", "Luxembourg", False, None, ()),
    ("lv", "Latvia", False, None, ()),
    ("ly", "Libya", False, None, ()),
    ("ma", "Morocco", False, None, ()),
    ("mc", "Monaco", False, None, ()),
    ("md", "Moldova", False, None, ()),
    ("me", "Montenegro", False, None, ()),
    ("mf", "Saint Martin", False, None, ("St. Martin",)),
    ("mg", "Madagascar", False, None, ()),
    ("mh", "Marshall Islands", True, None, ()),
    ("mk", "North Macedonia", False, None, ("Macedonia",)),
    ("ml", "Mali", False, None, ()),
    ("mm", "Myanmar", False, None, ("Burma",)),
    ("mn", "Mongolia", False, None, ()),
    ("mo", "Macau", False, None, ("Macao",)),
    ("mp", "Northern Mariana Islands", True, None, ()),
    ("mq", "Martinique", False, None, ()),
    ("mr", "Mauritania", False, None, ()),
    ("ms", "Montserrat", False, None, ()),
    ("mt", "Malta", False, None, ()),
    ("mu", "Mauritius", False, None, ()),
    ("mv", "Maldives", True, None, ()),
    ("mw", "Malawi", False, None, ()),
    ("mx", "Mexico", False, None, ("México",)),
    ("my", "Malaysia", False, None, ()),
    ("mz", "Mozambique", False, None, ()),
    ("na", "Namibia", False, None, ()),
    ("nc", "New Caledonia", False, None, ()),
    ("ne", "Niger", False, None, ()),
    ("nf", "Norfolk Island", False, None, ()),
    ("ng", "Nigeria", False, None, ()),
    ("ni", "Nicaragua", False, None, ()),
    ("nl", "Netherlands", True, None, ("Holland", "The Netherlands")),
    ("no", "Norway", False, None, ()),
    ("np", "Nepal", False, None, ()),
    ("nr", "Nauru", False, None, ()),
    ("nu", "Niue", False, None, ()),
    ("nz", "New Zealand", False, None, ("Aotearoa",)),
    ("om", "Oman", False, None, ()),
    ("pa", "Panama", False, None, ()),
    ("pe", "Peru", False, None, ()),
    ("pf", "French Polynesia", False, None, ("Tahiti",)),
    ("pg", "Papua New Guinea", False, None, ()),
    ("ph", "Philippines", True, None, ()),
    ("pk", "Pakistan", False, None, ()),
    ("pl", "Poland", False, None, ("Polska",)),
    ("pm", "Saint Pierre and Miquelon", False, None, ()),
    ("pn", "Pitcairn Islands", True, None, ("Pitcairn",)),
    ("pr", "Puerto Rico", False, None, ()),
    ("ps", "Palestine", False, None, ("Palestinian Territories",)),
    ("pt", "Portugal", False, None, ()),
    ("pw", "Palau", False, None, ()),
    ("py", "Paraguay", False, None, ()),
    ("qa", "Qatar", False, None, ()),
    ("re", "Réunion", False, None, ()),
    ("ro", "Romania", False, None, ()),
    ("rs", "Serbia", False, None, ()),
    ("ru", "Russia", False, None, ("Russian Federation",)),
    ("rw", "Rwanda", False, None, ()),
    ("sa", "Saudi Arabia", False, None, ("KSA",)),
    ("sb", "Solomon Islands", True, None, ()),
    ("sc", "Seychelles", True, None, ()),
    ("sd", "Sudan", False, None, ()),
    ("se", "Sweden", False, None, ("Sverige",)),
    ("sg", "Singapore", False, None, ()),
    ("sh", "Saint Helena", False, None, ("Saint Helena, Ascension and Tristan da Cunha", "St. Helena")),
    ("si", "Slovenia", False, None, ()),
    ("sj", "Svalbard and Jan Mayen", False, None, ("Svalbard",)),
    ("sk", "Slovakia", False, None, ()),
    ("sl", "Sierra Leone", False, None, ()),
    ("sm", "San Marino", False, None, ()),
    ("sn", "Senegal", False, None, ()),
    ("so", "Somalia", False, None, ()),
    ("sr", "Suriname", False, None, ()),
    ("ss", "South Sudan", False, None, ()),
    ("st", "São Tomé and Príncipe", False, None, ()),
    ("sv", "El Salvador", False, None, ("Salvador",)),
    ("sx", "Sint Maarten", False, None, ()),
    ("sy", "Syria", False, None, ()),
    ("sz", "Eswatini", False, None, ("Swaziland",)),
    ("tc", "Turks and Caicos Islands", True, None, ("Turks and Caicos",)),
    ("td", "Chad", False, None, ()),
    ("tf", "French Southern Territories", True, None, ()),
    ("tg", "Togo", False, None, ()),
    ("th", "Thailand", False, None, ()),
    ("tj", "Tajikistan", False, None, ()),
    ("tk", "Tokelau", False, None, ()),
    ("tl", "Timor-Leste", False, None, ("East Timor",)),
    ("tm", "Turkmenistan", False, None, ()),
    ("tn", "Tunisia", False, None, ()),
    ("to", "Tonga", False, None, ()),
    ("tr", "Turkey", False, None, ("Türkiye",)),
    ("tt", "Trinidad and Tobago", False, None, ("Trinidad",)),
    ("tv", "Tuvalu", False, None, ()),
    ("tw", "Taiwan", False, None, ()),
    ("tz", "Tanzania", False, None, ()),
    ("ua", "Ukraine", False, None, ()),
    ("ug", "Uganda", False, None, ()),
    ("um", "U.S. Minor Outlying Islands", True, None, ("United States Minor Outlying Islands",)),
    (
        "us",
        "United States",
        True,
        "U.S.",
        ("USA", "U.S.A.", "United States of America", "America", "The States"),
    ),
    ("uy", "Uruguay", False, None, ()),
    ("uz", "Uzbekistan", False, None, ()),
    ("va", "Vatican City", False, None, ("Vatican", "Holy See")),
    ("vc", "Saint Vincent and the Grenadines", False, None, ("St. Vincent",)),
    ("ve", "Venezuela", False, None, ()),
    ("vg", "British Virgin Islands", True, None, ()),
    ("vi", "U.S. Virgin Islands", True, None, ("United States Virgin Islands",)),
    ("vn", "Vietnam", False, None, ("Viet Nam",)),
    ("vu", "Vanuatu", False, None, ()),
    ("wf", "Wallis and Futuna", False, None, ()),
    ("ws", "Samoa", False, None, ()),
    ("xk", "Kosovo", False, None, ()),
    ("ye", "Yemen", False, None, ()),
    ("yt", "Mayotte", False, None, ()),
    ("za", "South Africa", False, None, ()),
    ("zm", "Zambia", False, None, ()),
    ("zw", "Zimbabwe", False, None, ()),
)

# Where FlixPatrol's slug is not the hyphenated English name above (seen in scrapers' location lists).
_SLUG_OVERRIDES = {
    "cd": "democratic-republic-of-the-congo",
    "sv": "salvador",
    "sz": "swaziland",
    "tl": "east-timor",
}

# Other words for "the whole world".
_WORLD_ALIASES = ("world", "worldwide", "global", "globally", "all", "everywhere", "international")


def _fold(text: str) -> str:
    """Accent-, case- and punctuation-blind form used for lookups: "Côte d'Ivoire" -> "cote d ivoire"."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace(".", "").replace("&", " and ")
    return " ".join(re.findall(r"[a-z0-9]+", text))


def slugify(name: str) -> str:
    """FlixPatrol-style slug: ASCII, lower case, hyphenated ("Côte d'Ivoire" -> "cote-d-ivoire")."""
    return _fold(name).replace(" ", "-")


def _build() -> dict[str, Region]:
    regions = {}
    for code, name, the, short, _aliases in _TABLE:
        slug = _SLUG_OVERRIDES.get(code) or slugify(name)
        regions[code] = Region(code, name, the, short, slug)
    return regions


REGIONS: Mapping[str, Region] = MappingProxyType(_build())
COUNTRY_CODES: frozenset[str] = frozenset(REGIONS)
REGION_CODES: frozenset[str] = COUNTRY_CODES | {WORLD}
"""Every valid `region` value: the country codes and `world`."""

_BY_SLUG: dict[str, str] = {r.slug: r.code for r in REGIONS.values()} | {WORLD: WORLD}


def _build_index() -> dict[str, str]:
    """Folded text -> code, for every code, name, short form, slug and alias."""
    index: dict[str, str] = {}
    for code, name, _the, short, aliases in _TABLE:
        for text in (name, short, REGIONS[code].slug, *aliases):
            if text:
                index.setdefault(_fold(text), code)
    for code in REGIONS:  # codes win over names that fold the same ("in", "is", "no")
        index[code] = code
    for text in _WORLD_ALIASES:
        index[text] = WORLD
    return index


_INDEX = _build_index()
_SUGGEST_NAMES: dict[str, str] = {_fold(r.name): r.code for r in REGIONS.values()} | {
    k: v for k, v in _INDEX.items() if len(k) > 3
}


def _country(code: str) -> Region:
    region = REGIONS.get(code.lower())
    if region is None:
        raise InputError(f"{code!r} is not a region code (expected `world` or an ISO code such as `us`)")
    return region


def flag(code: str) -> str:
    """The flag emoji: two regional-indicator letters ("us" -> 🇺🇸); 🌍 for the world."""
    if code.lower() == WORLD:
        return WORLD_FLAG
    return _flag_emoji(_country(code).code)


def _flag_emoji(code: str) -> str:
    return "".join(chr(0x1F1E6 + ord(ch) - ord("a")) for ch in code)


def region_name(code: str) -> str:
    """The common English name: United States; Worldwide for the world."""
    if code.lower() == WORLD:
        return WORLD_NAME
    return _country(code).name


def region_phrase(code: str, *, short: bool = True, flag: bool = True) -> str:
    """The region as it reads after "in": "the 🇺🇸 U.S.", "🇰🇷 South Korea"; "🌍 worldwide" drops the "in"."""
    if code.lower() == WORLD:
        return f"{WORLD_FLAG} worldwide" if flag else "worldwide"
    region = _country(code)
    words = [region.short if short and region.short else region.name]
    if flag:
        words.insert(0, _flag_emoji(region.code))
    if region.the:
        words.insert(0, "the")
    return " ".join(words)


def _flag_to_code(text: str) -> str | None:
    """A pasted flag emoji -> its code (🇺🇸 -> us); a globe -> world."""
    letters = [ord(ch) - 0x1F1E6 for ch in text.strip()]
    if len(letters) == 2 and all(0 <= n < 26 for n in letters):
        return "".join(chr(ord("a") + n) for n in letters)
    if text.strip() in ("🌍", "🌎", "🌏", "🌐"):
        return WORLD
    return None


def resolve_region(text: str, tr: Messages = ENGLISH) -> str:
    """A region code from what a user typed: a code in any case, a name, a short form, a slug or an
    alias, or a name in one of chartbot's other languages ("대한민국", "Estados Unidos").

    Raises InputError naming the closest regions (in `tr`'s language) when nothing matches.
    """
    code = _flag_to_code(text)
    if code in REGION_CODES:
        return code
    folded = _fold(text)
    for key in (folded, folded.removeprefix("the "), folded.replace(" ", "")):
        if key in _INDEX:
            return _INDEX[key]
    code = _local_index().get(_fold_local(text))
    if code is not None:
        return code
    raise InputError(_unknown_message(text, folded, tr))


def _unknown_message(text: str, folded: str, tr: Messages) -> str:
    if tr.locale == SOURCE:
        matches = difflib.get_close_matches(folded, list(_SUGGEST_NAMES), n=8, cutoff=0.6)
        codes = list(dict.fromkeys(_SUGGEST_NAMES[m] for m in matches))[:3]
    else:
        names = _local_names(tr.locale)
        matches = difflib.get_close_matches(_fold_local(text), list(names), n=8, cutoff=0.6)
        codes = list(dict.fromkeys(names[m] for m in matches))[:3]
    if not codes:
        return tr.gettext("error.region", text=repr(text))
    options = ", ".join(f"{_name_in(c, tr)} (`{c}`)" for c in codes)
    return tr.gettext("error.region.did_you_mean", text=repr(text), options=options)


# --- names in the other languages ------------------------------------------------------------------


def _fold_local(text: str) -> str:
    """Case-, accent-, space- and punctuation-blind, for names in any script ("Corée du Sud" ->
    "coreedusud", "대한민국" stays itself)."""
    text = unicodedata.normalize("NFKD", text.casefold())
    return unicodedata.normalize("NFC", "".join(ch for ch in text if ch.isalnum()))


def _name_in(code: str, tr: Messages) -> str:
    if tr.locale == SOURCE:
        return region_name(code)
    from bot.i18n.formats import region_name as local_name  # bot.i18n.formats reads this module

    return local_name(code, tr)


@functools.cache
def _local_names(locale: str) -> dict[str, str]:
    """Folded name -> code, for every region's name in one of our languages (the world's too)."""
    tr = translator(locale)
    names = {_fold_local(_name_in(code, tr)): code for code in REGIONS}
    for key in ("region.world", "place.global"):
        names[_fold_local(tr.gettext(key))] = WORLD
    names.pop("", None)
    return names


@functools.cache
def _local_index() -> dict[str, str]:
    """Folded name -> code in every language but English (read on the first name English lacks)."""
    index: dict[str, str] = {}
    for locale in LOCALES:
        if locale != SOURCE:
            for name, code in _local_names(locale).items():
                index.setdefault(name, code)
    return index


def slug_to_code(slug: str) -> str:
    """FlixPatrol URL segment -> region code ("south-korea" -> "kr", "world" -> "world")."""
    code = _BY_SLUG.get(slug.strip().strip("/").lower())
    if code is None:
        raise InputError(f"{slug!r} is not a FlixPatrol country slug known to chartbot (see bot/regions.py)")
    return code


def code_to_slug(code: str) -> str:
    """Region code -> FlixPatrol URL segment ("kr" -> "south-korea")."""
    if code.lower() == WORLD:
        return WORLD
    return _country(code).slug
