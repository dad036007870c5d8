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
    so no UUID object is made."""
    ms = (time.time_ns() // 1_000_000) & ((1 << 48) - 1)
    pool = os.urandom(10 * count)
    high = ms << 80 | (0x7 << 76)
    values = []
    for i in range(count):
        rand = int.from_bytes(pool[10 * i:10 * i + 10], "big")
        values.append(high | ((rand >> 62) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1)))
    values.sort()  # ints: one C sort, not UUID comparisons
    texts = []
    for value in values:
        h = f"{value:032x}"
        texts.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return texts
