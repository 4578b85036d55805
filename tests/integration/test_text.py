"""`neutralise`: every control and bidi character shown, nothing dropped, ordinary text untouched."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration.text import neutralise, neutralise_lines

# What must never reach a reader as is (RELIABILITY.md, "terminal"): C0, DEL, C1, bidi controls and
# marks, line and paragraph separators.
FORBIDDEN = frozenset(
    [
        *map(chr, range(0x20)),
        *map(chr, range(0x7F, 0xA0)),
        *map(chr, range(0x202A, 0x202F)),
        *map(chr, range(0x2066, 0x206A)),
        "\u200e",
        "\u200f",
        "\u061c",
        "\u2028",
        "\u2029",
    ]
)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b]0;pwned\x07", "␛]0;pwned␇"),
        ("\x1b[2J", "␛[2J"),
        ("Pixel\r\nFAKE: Applied", "Pixel␍␊FAKE: Applied"),
        ("abc\x08\x08\x08xyz", "abc␈␈␈xyz"),
        ("\x00\t\x7f", "␀␉␡"),
        ("\x85next line\x9b2J", "⟨U+0085⟩next line⟨U+009B⟩2J"),
        ("photo\u202egnp.exe", "photo⟨U+202E⟩gnp.exe"),
        ("\u200e\u200f\u061c", "⟨U+200E⟩⟨U+200F⟩⟨U+061C⟩"),
        ("one\u2028two\u2029", "one⟨U+2028⟩two⟨U+2029⟩"),
        ("\ufeffzero\u200bwidth", "⟨U+FEFF⟩zero⟨U+200B⟩width"),
        ("lone \ud800 surrogate", "lone ⟨U+D800⟩ surrogate"),
        ("Café Ünïcödé", "Café Ünïcödé"),
        ("東京の電話 📱", "東京の電話 📱"),
        ("👩\u200d💻 and \u200cZWNJ", "👩\u200d💻 and \u200cZWNJ"),  # joiners that text needs stay
        ("🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", None),  # a subdivision flag
        ("no\u00a0break\u3000space", None),  # spaces are not controls
        ("<!channel> & \\u202e", None),  # markup is the renderer's job; a typed escape is just text
        ("", ""),
    ],
)
def test_neutralise(text: str, shown: str | None) -> None:
    assert neutralise(text) == (text if shown is None else shown)


def test_every_bidi_control_is_named() -> None:
    bidi = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    assert neutralise(bidi) == "".join(f"⟨U+{ord(c):04X}⟩" for c in bidi)


def test_lines_keep_their_own_newlines_only() -> None:
    assert neutralise_lines("Device:\n• \x1b[2Jphone\r") == "Device:\n• ␛[2Jphone␍"


@given(st.text())
def test_nothing_forbidden_survives_and_nothing_is_lost(text: str) -> None:
    shown = neutralise(text)
    assert not FORBIDDEN & set(shown)
    assert all(unicodedata.category(c) not in ("Cc", "Zl", "Zp", "Cs") for c in shown)
    # visible, not dropped: every character of the input is still there or stands for itself
    assert len(shown) >= len(text)
    assert neutralise(shown) == shown
