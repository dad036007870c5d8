"""Job ids: UUIDv7, time-ordered, so new rows land at the end of the primary-key index."""

import os
import time
import uuid


def uuid7() -> uuid.UUID:
    """A version-7 UUID: 48 bits of Unix milliseconds, then 74 random bits (RFC 9562)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64
    value |= (0b10 << 62) | (rand & ((1 << 62) - 1))
    return uuid.UUID(int=value)


def uuid7_texts(count: int) -> list[str]:
    """``count`` version-7 UUIDs as text (8-4-4-4-12 hex), in increasing order, with one read of
    the random source. For enqueue_many: the text is what COPY sends and what TaskResult.id holds,
    so no UUID object is made. Spelled from the random bytes' hex directly (no int per id):
    48 bits of milliseconds, the version 7, rand_a (12 bits), the variant 0b10 and 2 random bits
    (one hex digit of 8, 9, a, b), then 60 random bits; the texts sort as the UUIDs do."""
    ms = (time.time_ns() // 1_000_000) & ((1 << 48) - 1)
    h = f"{ms:012x}"
    head = f"{h[:8]}-{h[8:12]}-7"
    pool = os.urandom(10 * count)  # per id: 9 bytes of hex digits, 1 byte for the variant digit
    hexes = pool.hex()
    variant = _VARIANT
    texts = [
        f"{head}{hexes[i : i + 3]}-{variant[pool[j]]}{hexes[i + 3 : i + 6]}-{hexes[i + 6 : i + 18]}"
        for i, j in zip(range(0, 20 * count, 20), range(9, 10 * count, 10))
    ]
    texts.sort()  # same width, same case: text order is the UUIDs' order
    return texts


# A byte -> the variant's hex digit: 0b10 then the byte's 2 low bits.
_VARIANT = "89ab" * 64
