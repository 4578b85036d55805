"""Cheap, seeded random draws for the demo tenant: choices and guids (a million of each in seconds)."""

import random
from collections.abc import Iterator, Sequence
from typing import TypeVar

_T = TypeVar("_T")
# A version 4 (random) UUID has 122 random bits; the version nibble and the variant bits sit between
# them at fixed places, as `uuid.UUID(int=…, version=4)` puts them.
_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_SET = (0x8000 << 48) | (4 << 76)
_RANDOM_BITS = 122


def pick(rng: random.Random, items: Sequence[_T]) -> _T:
    """`rng.choice(items)` at a third of its cost (one float draw instead of exact rejection sampling)."""
    return items[int(rng.random() * len(items))]


def guid(rng: random.Random) -> str:
    """A random UUID (version 4) in its usual text form: `str(uuid.UUID(int=…, version=4))`."""
    return _text(rng.getrandbits(128) & _CLEAR | _SET)


def ascending_guids(rng: random.Random, count: int) -> Iterator[str]:
    """`count` random-looking UUIDs (version 4) in ascending order: the n-th is drawn at random from the
    n-th of `count` equal slices of the 122 random bits. Rows keyed by them are appended to their
    primary key index in order, instead of inserted at random (a bulk load twice as fast)."""
    width = (1 << _RANDOM_BITS) // max(count, 1)
    for n in range(count):
        bits = n * width + rng.getrandbits(_RANDOM_BITS) % width
        # spread the 122 bits around the version nibble and variant bits, keeping their order
        wide = (bits >> 74 << 80) | ((bits >> 62) & 0xFFF) << 64 | (bits & ((1 << 62) - 1))
        yield _text(wide | _SET)


def _text(value: int) -> str:
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
