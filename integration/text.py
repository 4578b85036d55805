"""Untrusted text made safe to show: every renderer (terminal, Block Kit, mail) passes names from
phones and the directory through `neutralise` before they reach a reader."""

import unicodedata

# Invisible joiners that ordinary text needs: ZWNJ and ZWJ (Persian, Indic scripts, emoji sequences
# such as woman + ZWJ + laptop) and the tag characters of subdivision flags (the Scottish flag). They
# can neither move the cursor nor reorder text, so they stay.
_KEPT = {0x200C, 0x200D, *range(0xE0020, 0xE0080)}
_ESCAPED_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}  # controls, format (bidi), surrogates, separators


def _visible(code: int) -> str:
    """What a code point is shown as: a control picture, a `⟨U+…⟩` escape, or itself."""
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ … ␟: ESC → ␛, LF → ␊, CR → ␍, BEL → ␇, BS → ␈
    if code == 0x7F:
        return "␡"
    if code in _KEPT or unicodedata.category(chr(code)) not in _ESCAPED_CATEGORIES:
        return chr(code)  # a str, not the int: `translate` is twice as fast with str values
    return f"⟨U+{code:04X}⟩"


_TABLE_LIMIT = 65_536  # hostile names could walk all of Unicode: the cache stays a few MB


class _Table(dict[int, str]):
    """`str.translate`'s table: filled once per code point as text meets it, so importing costs
    nothing and a long run costs one dict lookup per character."""

    def __missing__(self, code: int) -> str:
        value = _visible(code)
        if len(self) < _TABLE_LIMIT:
            self[code] = value
        return value


# ASCII, C1 and the bidi controls up front: the characters an attack uses are never a first miss.
_TABLE = _Table()
for _code in [*range(0xA0), 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]:
    _TABLE[_code] = _visible(_code)


def neutralise(text: str) -> str:
    """`text` with every control, bidi and other format character made visible, nothing dropped.

    Use it on every untrusted string (device, app, owner and group names, upstream error messages)
    before it is put in front of a person, and on each *line* of a finished reply as a safety net
    (the newlines mesbot puts between lines are its own; a newline inside a value is not):

    - C0 controls become control pictures: ESC → ␛, LF → ␊, CR → ␍, BEL → ␇, BS → ␈, TAB → ␉, NUL → ␀;
      DEL → ␡. So `\\x1b]0;title\\x07` cannot set a terminal title and `\\r\\nFAKE: Applied` cannot
      forge a line.
    - C1 controls (U+0080–U+009F), bidi controls (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F,
      U+061C), other format characters (U+FEFF, U+200B …), line/paragraph separators and lone
      surrogates become `⟨U+202E⟩`-style escapes, so an override cannot reverse what follows it.
    - Everything else, including accents, CJK, emoji with their joiners, is unchanged.

    It does no markup escaping: Slack (`notifications.slack_markup.escape`) and HTML (Jinja2 autoescape) still
    escape their own special characters, after this. Fast: one C-level `isprintable` check, and a
    `str.translate` over a cached table only when something needs replacing.
    """
    if text.isprintable():  # the usual case: Python's printable excludes every character we replace
        return text
    return text.translate(_TABLE)


def neutralise_lines(text: str) -> str:
    """A finished reply for a terminal: each line neutralised, mesbot's own newlines kept."""
    return "\n".join(neutralise(line) for line in text.split("\n"))
