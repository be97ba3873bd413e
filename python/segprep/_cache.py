"""A byte-bounded least-recently-used cache for decoded row groups and shards.

Random access into compressed storage (Parquet pages, deflated NPZ members) decodes a whole block
to get one sample; keeping the last blocks makes the next samples from them memory reads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Callable, TypeVar

T = TypeVar("T")


class BlockCache:
    """Keeps decoded blocks up to `max_bytes` in all; the least recently used leave first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._blocks: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], tuple[T, int]]) -> T:
        """The block under `key`, loaded by `load() -> (block, its bytes)` when absent."""
        with self._lock:
            hit = self._blocks.get(key)
            if hit is not None:
                self._blocks.move_to_end(key)
                return hit[0]  # type: ignore[return-value]
        block, size = load()
        with self._lock:
            if key not in self._blocks:
                self._blocks[key] = (block, size)
                self._bytes += size
            while self._bytes > self.max_bytes and len(self._blocks) > 1:
                _, (_, dropped) = self._blocks.popitem(last=False)
                self._bytes -= dropped
        return block

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()
            self._bytes = 0
