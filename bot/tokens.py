"""Splitting command text into words: whitespace separates, quotes keep spaces.

Straight quotes ("…", '…') and the curly quotes Slack and phones substitute (“…”, ‘…’) both work.
A quote opens only at the start of a word, so an apostrophe inside one (`O'Brien`) is just a letter.
"""

from integration.errors import InvalidInput

MAX_LENGTH = 2_000
_CLOSING = {'"': '"', "'": "'", "“": "”", "”": "”", "‘": "’", "’": "’", "„": "“"}


def split(text: str) -> list[str]:
    if len(text) > MAX_LENGTH:
        raise InvalidInput(f"That command is {len(text):,} characters long; the limit is {MAX_LENGTH:,}.")
    if not any(quote in text for quote in _CLOSING):
        return text.split()  # the same words: str.split() splits on what str.isspace() calls space
    words: list[str] = []
    current: list[str] = []
    in_word = False
    closing: str | None = None
    for char in text:
        if closing is not None:
            if char == closing:
                closing = None
            else:
                current.append(char)
        elif char in _CLOSING and not in_word:
            closing = _CLOSING[char]
            in_word = True
        elif char.isspace():
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
        else:
            current.append(char)
            in_word = True
    if closing is not None:
        raise InvalidInput(f"A quote is not closed: add the closing {closing} (quotes keep spaces in names).")
    if in_word:
        words.append("".join(current))
    return words
