"""The font that draws Korean and Japanese in the rank-history picture, shipped with the package.

matplotlib's own font (DejaVu Sans) has no Hangul, kana or kanji. The package ships a subset of Noto
Sans CJK JP Regular (SIL Open Font License 1.1, see fonts/OFL.txt): every Hangul syllable and jamo,
kana, CJK punctuation and full-width forms, and the ideographs of the Japanese and Korean national
character sets (JIS X 0208, JIS X 0213 plane 1, Windows-932's extensions, KS X 1001's hanja). That is
~20,600 characters in 3 MB, against 16 MB for the whole font; a character outside it is left out of
the picture (bot.render.picture_text), never drawn as a box.

Rebuild it (e.g. after a Noto release) with fontTools, which matplotlib already depends on:

    python -m bot.i18n.cjkfont /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

(Debian's `fonts-noto-cjk`; face 0 of that collection is Noto Sans CJK JP; an upstream
NotoSansCJKjp-Regular.otf works too.)
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

FONT_FILE = "NotoSansCJKjp-Regular-subset.otf"
FAMILY = "Noto Sans CJK JP"

_RANGES = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3130, 0x318F),  # Hangul compatibility jamo
    (0x31F0, 0x31FF),  # katakana phonetic extensions
    (0x3200, 0x32FF),  # enclosed CJK letters and months
    (0xAC00, 0xD7A3),  # Hangul syllables
    (0xFF00, 0xFFEF),  # half-width and full-width forms
)
# National character sets whose ideographs are kept: (codec, lead bytes, trail bytes) of their
# two-byte codes.
_CHARSETS = (
    ("euc_jp", range(0xA1, 0xFF), range(0xA1, 0xFF)),  # JIS X 0208
    ("euc_jis_2004", range(0xA1, 0xFF), range(0xA1, 0xFF)),  # JIS X 0213 plane 1
    ("cp932", range(0x81, 0xF0), range(0x40, 0xFD)),  # Windows Japanese (NEC, IBM extensions)
    ("euc_kr", range(0xA1, 0xFF), range(0xA1, 0xFF)),  # KS X 1001, hanja included
)


def font_path() -> Path:
    """Where the installed package keeps the font (package data)."""
    return Path(str(resources.files("bot.i18n") / "fonts" / FONT_FILE))


def _ideograph(code: int) -> bool:
    return 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x3FFFF


def coverage() -> frozenset[int]:
    """The code points the subset is made of (those the source font has end up in it)."""
    codes = {code for low, high in _RANGES for code in range(low, high + 1)}
    for codec, leads, trails in _CHARSETS:
        for lead in leads:
            for trail in trails:
                try:
                    text = bytes((lead, trail)).decode(codec)
                except UnicodeDecodeError:
                    continue
                if len(text) == 1 and _ideograph(ord(text)):
                    codes.add(ord(text))
    return frozenset(codes)


def build(source: Path, target: Path, font_number: int = 0) -> int:
    """Subset `source` (an .otf, or face `font_number` of a .ttc) into `target`; returns its size."""
    from fontTools import subset  # a dependency of matplotlib; needed only to rebuild

    options = subset.Options()
    options.font_number = font_number
    options.hinting = False  # matplotlib hints glyphs itself (FreeType's auto-hinter)
    options.name_IDs = ["*"]  # keep the copyright and licence notices
    options.name_languages = ["*"]
    options.notdef_outline = True
    # Horizontal text's default shaping only: the regional (locl), vertical and alternate forms the
    # full font carries would double the size, and the picture never asks for them.
    options.layout_features = ["ccmp", "rlig", "calt", "clig", "liga", "kern", "mark", "mkmk"]
    font = subset.load_font(str(source), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=coverage())
    subsetter.subset(font)
    subset.save_font(font, str(target), options)
    return target.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.i18n.cjkfont", description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="Noto Sans CJK (.ttc collection or JP .otf)")
    parser.add_argument("--font-number", type=int, default=0, help="face in a .ttc (0: Noto Sans CJK JP)")
    parser.add_argument("--output", type=Path, default=None, help=f"default: the package's {FONT_FILE}")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"no font file {args.source}", file=sys.stderr)
        return 2
    target = args.output or font_path()
    size = build(args.source, target, args.font_number)
    print(f"wrote {target} ({size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
