import pytest

from bot.model import WORLD, InputError
from bot.regions import (
    COUNTRY_CODES,
    REGION_CODES,
    REGIONS,
    code_to_slug,
    flag,
    region_name,
    region_phrase,
    resolve_region,
    slug_to_code,
)


def _words(text: str) -> list[str]:
    return text.split()


# The distinct country_iso2 values of Netflix's official all-weeks-countries.tsv (2022-03-02 snapshot,
# /work/shared/data/netflix_official_top10): 94 countries. (The brief's list lacked MU and RS.)
NETFLIX_COUNTRIES = _words(
    "AE AR AT AU BD BE BG BH BO BR BS CA CH CL CO CR CY CZ DE DK DO EC EE EG ES FI FR GB GP GR GT HK HN HR "
    "HU ID IE IL IN IS IT JM JO JP KE KR KW LB LK LT LU LV MA MQ MT MU MV MX MY NC NG NI NL NO NZ OM PA PE "
    "PH PK PL PT PY QA RE RO RS RU SA SE SG SI SK SV TH TR TT TW UA US UY VE VN ZA"
)

# Country slugs seen in a public scraper's list of FlixPatrol locations (Navino16/flixpatrol-top10-on-trakt).
FLIXPATROL_SLUGS = _words(
    "afghanistan albania algeria andorra angola antigua-and-barbuda argentina armenia australia austria "
    "azerbaijan bahamas bahrain bangladesh barbados belarus belgium belize benin bhutan bolivia "
    "bosnia-and-herzegovina botswana brazil brunei bulgaria burkina-faso burundi cambodia cameroon canada "
    "cape-verde central-african-republic chad chile china colombia comoros costa-rica croatia cyprus "
    "czech-republic democratic-republic-of-the-congo denmark djibouti dominica dominican-republic east-timor "
    "ecuador egypt equatorial-guinea eritrea estonia ethiopia fiji finland france gabon gambia georgia "
    "germany ghana greece grenada guadeloupe guatemala guinea guinea-bissau guyana haiti honduras hong-kong "
    "hungary "
    "iceland india indonesia iraq ireland israel italy ivory-coast jamaica japan jordan kazakhstan kenya "
    "kiribati kosovo kuwait kyrgyzstan laos latvia lebanon lesotho liberia libya liechtenstein lithuania "
    "luxembourg madagascar malawi malaysia maldives mali malta marshall-islands martinique mauritania "
    "mauritius mexico micronesia moldova monaco mongolia montenegro morocco mozambique myanmar namibia nauru "
    "nepal netherlands new-caledonia new-zealand nicaragua niger nigeria north-macedonia norway oman "
    "pakistan palau palestine panama papua-new-guinea paraguay peru philippines poland portugal qatar "
    "republic-of-the-congo reunion romania russia rwanda saint-kitts-and-nevis saint-lucia "
    "saint-vincent-and-the-grenadines salvador samoa san-marino sao-tome-and-principe saudi-arabia senegal "
    "serbia seychelles sierra-leone singapore slovakia slovenia solomon-islands somalia south-africa "
    "south-korea south-sudan spain sri-lanka sudan suriname swaziland sweden switzerland taiwan tajikistan "
    "tanzania thailand togo tonga trinidad-and-tobago tunisia turkey turkmenistan tuvalu uganda ukraine "
    "united-arab-emirates united-kingdom united-states uruguay uzbekistan vanuatu vatican-city venezuela "
    "vietnam yemen zambia zimbabwe"
)


def test_table_is_complete():
    assert len(COUNTRY_CODES) == 250  # the 249 ISO 3166-1 alpha-2 codes and XK (Kosovo)
    assert WORLD in REGION_CODES
    assert len(REGION_CODES) == len(COUNTRY_CODES) + 1
    assert all(len(c) == 2 and c.isascii() and c.islower() for c in COUNTRY_CODES)


@pytest.mark.parametrize("code", sorted(COUNTRY_CODES))
def test_every_country_has_name_flag_and_slug(code):
    assert region_name(code) == REGIONS[code].name and region_name(code).strip()
    emoji = flag(code)
    assert len(emoji) == 2 and all(0x1F1E6 <= ord(ch) <= 0x1F1FF for ch in emoji)
    assert slug_to_code(code_to_slug(code)) == code
    assert resolve_region(code.upper()) == code
    assert resolve_region(region_name(code)) == code


def test_slugs_are_unique_and_url_safe():
    slugs = [r.slug for r in REGIONS.values()]
    assert len(set(slugs)) == len(slugs)
    assert all(s.isascii() and s == s.lower() and " " not in s and s.strip("-") == s for s in slugs)
    assert WORLD not in slugs


@pytest.mark.parametrize("iso2", NETFLIX_COUNTRIES)
def test_netflix_countries_resolve(iso2):
    code = iso2.lower()
    assert resolve_region(iso2) == code
    assert code in REGION_CODES
    assert slug_to_code(code_to_slug(code)) == code


def test_netflix_country_list_is_the_94():
    assert len(set(NETFLIX_COUNTRIES)) == 94


@pytest.mark.parametrize(
    ("slug", "code"),
    [
        ("united-states", "us"),
        ("south-korea", "kr"),
        ("united-kingdom", "gb"),
        ("czech-republic", "cz"),
        ("hong-kong", "hk"),
        ("reunion", "re"),
        ("salvador", "sv"),
        ("ivory-coast", "ci"),
        ("east-timor", "tl"),
        ("swaziland", "sz"),
        ("world", "world"),
    ],
)
def test_known_flixpatrol_slugs(slug, code):
    assert slug_to_code(slug) == code
    assert code_to_slug(code) == slug


@pytest.mark.parametrize("slug", FLIXPATROL_SLUGS)
def test_every_slug_a_scraper_uses_is_known(slug):
    assert slug_to_code(slug) in COUNTRY_CODES


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("us", "us"),
        ("US", "us"),
        ("United States", "us"),
        ("united states", "us"),
        ("USA", "us"),
        ("U.S.", "us"),
        ("the U.S.", "us"),
        ("South Korea", "kr"),
        ("Korea", "kr"),
        ("UK", "gb"),
        ("U.K.", "gb"),
        ("Britain", "gb"),
        ("Great Britain", "gb"),
        ("world", "world"),
        ("WORLD", "world"),
        ("global", "world"),
        ("worldwide", "world"),
        ("Czechia", "cz"),
        ("czech republic", "cz"),
        ("the Netherlands", "nl"),
        ("Holland", "nl"),
        ("Türkiye", "tr"),
        ("Turkey", "tr"),
        ("Reunion", "re"),
        ("Réunion", "re"),
        ("UAE", "ae"),
        ("Viet Nam", "vn"),
        ("Côte d'Ivoire", "ci"),
        ("south-korea", "kr"),
        ("  taiwan ", "tw"),
        ("🇯🇵", "jp"),
        ("🌍", "world"),
        ("in", "in"),  # a code wins over anything that folds the same
    ],
)
def test_aliases_resolve(text, code):
    assert resolve_region(text) == code


def test_unknown_region_suggests_the_closest():
    with pytest.raises(InputError) as info:
        resolve_region("Untied States")
    assert "United States (`us`)" in str(info.value)
    with pytest.raises(InputError, match="Germany"):
        resolve_region("Germny")


def test_unknown_region_without_suggestion_says_what_is_expected():
    with pytest.raises(InputError, match="two-letter code"):
        resolve_region("xyzzy")


def test_unknown_code_and_slug_raise():
    with pytest.raises(InputError):
        flag("zz")
    with pytest.raises(InputError):
        region_name("zz")
    with pytest.raises(InputError):
        slug_to_code("narnia")
    with pytest.raises(InputError):
        code_to_slug("zz")


def test_world():
    assert flag("world") == "🌍"
    assert region_name("world") == "Worldwide"
    assert code_to_slug("world") == "world"


@pytest.mark.parametrize(
    ("code", "kwargs", "phrase"),
    [
        ("us", {}, "the 🇺🇸 U.S."),
        ("us", {"short": False}, "the 🇺🇸 United States"),
        ("us", {"flag": False}, "the U.S."),
        ("gb", {}, "the 🇬🇧 U.K."),
        ("kr", {}, "🇰🇷 South Korea"),
        ("nl", {"flag": False}, "the Netherlands"),
        ("ph", {"flag": False}, "the Philippines"),
        ("cz", {"flag": False}, "the Czech Republic"),
        ("do", {"flag": False}, "the Dominican Republic"),
        ("bs", {"flag": False}, "the Bahamas"),
        ("ae", {"flag": False}, "the UAE"),
        ("ae", {"flag": False, "short": False}, "the United Arab Emirates"),
        ("gm", {"flag": False}, "the Gambia"),
        ("re", {"flag": False}, "Réunion"),
        ("world", {}, "🌍 worldwide"),
        ("world", {"flag": False}, "worldwide"),
    ],
)
def test_region_phrase(code, kwargs, phrase):
    assert region_phrase(code, **kwargs) == phrase


def test_phrase_reads_in_a_sentence():
    assert f"slipped to No. 2 in {region_phrase('US')}" == "slipped to No. 2 in the 🇺🇸 U.S."
