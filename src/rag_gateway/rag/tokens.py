"""Counting tokens without the generator's tokenizer: for history budgets and usage the backend omits.

The gateway has one tokenizer offline, the embedding model's (MiniLM's WordPiece, ``tokenizer.json`` under
EMBEDDING_TOKENIZER_DIR). It is not the generator's tokenizer, but English text comes out within a few
percent of a BPE tokenizer's count, which is what a budget or a usage figure needs. Without that file the
count falls back to characters / 4.

Counting a 4,000-character prompt takes about 2 ms here, more than a tenth of a request's own CPU. But a
WordPiece count is additive over lines (the pre-tokenizer splits on whitespace), and a prompt's lines are
mostly the same from request to request: the instruction and the chunks the corpus keeps citing. So
`PromptTokens` counts a prompt line by line with an LRU of line counts, and only new lines are tokenized:
inline when they are short (the question), in the CPU pool otherwise (where the tokenizer releases the
GIL), never long on the event loop.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cachetools import LRUCache

from rag_gateway.runtime.cpu_pool import CpuPool

logger = logging.getLogger("rag_gateway.rag")


class TokenCounter:
    """``count(text)``: tokens in ``text``, by the tokenizer at ``tokenizer_file`` or by characters / 4."""

    def __init__(self, tokenizer_file: Path | None = None) -> None:
        self._tokenizer: Any = None
        if tokenizer_file is not None and tokenizer_file.is_file():
            try:
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(tokenizer_file))
                tokenizer.no_truncation()
                tokenizer.no_padding()
                self._tokenizer = tokenizer
            except Exception as exc:  # a corrupt file must not stop the gateway: fall back to the estimate
                logger.warning("token counts fall back to characters / 4: %s", type(exc).__name__)
        self.name = "tokenizer" if self._tokenizer is not None else "chars/4"

    def count(self, text: str) -> int:
        return self.count_many([text])[0]

    def count_many(self, texts: Sequence[str]) -> list[int]:
        if self._tokenizer is not None and any(texts):
            # the batch form releases the GIL (``encode`` holds it): a pool thread counting a long prompt
            # does not stall the event loop; the "fast" form skips the offsets a count does not need
            encodings = self._tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
            return [len(encoding.ids) for encoding in encodings]
        return [math.ceil(len(text) / 4) for text in texts]

    def truncate(self, text: str, tokens: int) -> str:
        """The end of ``text`` that fits in ``tokens`` (the newest words of a too-long turn)."""
        if tokens <= 0:
            return ""
        if self.count(text) <= tokens:
            return text
        words = text.split()
        low, high = 0, len(words)  # the most words from the end that fit: binary search on the count
        while low < high:
            middle = (low + high + 1) // 2
            if self.count(" ".join(words[-middle:])) <= tokens:
                low = middle
            else:
                high = middle - 1
        return " ".join(words[len(words) - low :])


class PromptTokens:
    """A prompt's token count, line by line, with the counts of lines seen before kept (LRU).

    Lives on the event loop (looked up and filled there only), like the request-path caches.
    """

    #: New lines up to this many characters in all are counted inline: a pool hop would cost more.
    INLINE_CHARS = 1000

    def __init__(self, counter: TokenCounter, pool: CpuPool, size: int = 8192) -> None:
        self._counter = counter
        self._pool = pool
        self._cache: LRUCache[str, int] = LRUCache(maxsize=max(1, size))

    async def count(self, text: str) -> int:
        lines = text.split("\n")
        known = {line: count for line in lines if (count := self._cache.get(line)) is not None}
        missing = list(dict.fromkeys(line for line in lines if line not in known))
        if missing:
            if sum(map(len, missing)) <= self.INLINE_CHARS:
                counts = self._counter.count_many(missing)
            else:
                counts = await self._pool.run(self._counter.count_many, missing)
            for line, count in zip(missing, counts, strict=True):
                known[line] = self._cache[line] = count
        return sum(known[line] for line in lines)
