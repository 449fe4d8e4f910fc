"""Split cleaned text into chunks sized for the embedder and for the LLM's context.

Articles follow the Handbook's ``chunk_article``: split into sentences, then accumulate whole sentences into
chunks of ``min_length``-``max_length`` characters. Where the Handbook silently drops text, this keeps it:

* a sentence longer than ``max_length`` is split into pieces at whitespace (cut mid-word only when one
  "word" is itself longer than ``max_length``);
* when the chunk being built is still shorter than ``min_length`` and the next sentence does not fit, the
  chunk is topped up with the sentence's first words (the Handbook discards the short chunk);
* the short tail of a document becomes its last chunk (the Handbook discards it).

So every chunk but the last of a document is ``min_length``-``max_length`` characters, and
``" ".join(chunks)`` gives back the (whitespace-collapsed) text.

Posts and repositories use :func:`chunk_text`: windows of at most ``chunk_size`` characters that overlap by
up to ``chunk_overlap`` characters, ending on a sentence boundary when one falls in the second half of the
window, else on whitespace. The Handbook counts these in tokens (250/25 for posts, and characters 1,500/100
for repositories); ~4 characters per token gives the character budgets used here, with no tokenizer needed.
All functions are pure and deterministic.
"""

from __future__ import annotations

import re

#: The Handbook's sentence splitter: after . ? ! followed by whitespace, but not after "e.g." or "Mr.".
SENTENCE_END = re.compile(r"(?<!\w\.\w.)(?<![A-Z][a-z]\.)(?<=\.|\?|\!)\s")

ARTICLE_MIN_CHARS = 1000
ARTICLE_MAX_CHARS = 2000
POST_CHUNK_CHARS = 1000  # ~250 tokens
POST_OVERLAP_CHARS = 100  # ~25 tokens
REPOSITORY_CHUNK_CHARS = 1500
REPOSITORY_OVERLAP_CHARS = 100


def split_sentences(text: str) -> list[str]:
    """Sentences as the Handbook splits them, stripped, empty ones dropped."""
    return [s for s in (part.strip() for part in SENTENCE_END.split(text)) if s]


def _take_words(text: str, limit: int) -> tuple[str, str]:
    """The longest head of ``text`` of at most ``limit`` characters that ends at whitespace, and the rest.

    The head is empty when the first word alone is longer than ``limit``.
    """
    if len(text) <= limit:
        return text, ""
    cut = text.rfind(" ", 0, limit + 1)
    if cut <= 0:
        return "", text
    return text[:cut].rstrip(), text[cut + 1 :].lstrip()


def split_long(text: str, max_length: int) -> list[str]:
    """Pieces of at most ``max_length`` characters, cut at spaces; a single over-long word is cut hard."""
    pieces: list[str] = []
    rest = " ".join(text.split())
    while rest:
        head, rest = _take_words(rest, max_length)
        if not head:  # one word longer than max_length: no boundary to respect
            head, rest = rest[:max_length], rest[max_length:]
        pieces.append(head)
    return pieces


def chunk_article(
    text: str, min_length: int = ARTICLE_MIN_CHARS, max_length: int = ARTICLE_MAX_CHARS
) -> list[str]:
    """Whole sentences packed into chunks of min_length-max_length characters; the last may be shorter."""
    if not 0 < min_length <= max_length:
        raise ValueError("need 0 < min_length <= max_length")
    pieces = [piece for sentence in split_sentences(text) for piece in split_long(sentence, max_length)]
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        while piece:
            joined = f"{current} {piece}" if current else piece
            if len(joined) <= max_length:
                current, piece = joined, ""
            elif len(current) >= min_length:
                chunks.append(current)
                current = ""
            else:
                # Too short to close, and the sentence does not fit: top it up with the sentence's head.
                head, piece = _take_words(piece, max_length - len(current) - 1)
                if not head:  # only the first word is too long: close the chunk short instead of cutting
                    chunks.append(current)
                    current = ""
                    continue
                chunks.append(f"{current} {head}")
                current = ""
    if current:
        chunks.append(current)
    return chunks


def _sentence_ends(words: list[str]) -> list[bool]:
    """Whether a sentence ends after each word (the Handbook's rule, applied between words)."""
    ends = []
    for i, word in enumerate(words):
        if i + 1 == len(words):
            ends.append(True)
            continue
        # The splitter's look-behinds need the characters before the space: the word's tail suffices.
        probe = f"{word[-4:]} x"
        ends.append(SENTENCE_END.search(probe) is not None)
    return ends


def chunk_text(text: str, chunk_size: int, chunk_overlap: int) -> list[str]:
    """Overlapping windows of at most ``chunk_size`` characters; words are never cut (unless longer)."""
    if chunk_size <= 0 or not 0 <= chunk_overlap < chunk_size:
        raise ValueError("need chunk_size > 0 and 0 <= chunk_overlap < chunk_size")
    words = [piece for word in text.split() for piece in split_long(word, chunk_size)]
    ends = _sentence_ends(words)
    chunks: list[str] = []
    start, done = 0, 0  # next window's first word; words before `done` are already in a chunk
    while done < len(words):
        # Grow the window word by word while it fits.
        stop, length = start + 1, len(words[start])
        while stop < len(words) and length + 1 + len(words[stop]) <= chunk_size:
            length += 1 + len(words[stop])
            stop += 1
        if stop < len(words):
            # Prefer to end on a sentence boundary in the window's second half (and past the overlap).
            size = length
            for end in range(stop, done, -1):
                if size < chunk_size // 2:
                    break
                if ends[end - 1]:
                    stop = end
                    break
                size -= 1 + len(words[end - 1])
        chunks.append(" ".join(words[start:stop]))
        done = stop
        # Step back over whole words worth at most chunk_overlap characters, leaving room for new words.
        window_start, start, overlap = start, stop, -1
        while (
            stop < len(words)
            and start - 1 > window_start
            and overlap + 1 + len(words[start - 1]) <= chunk_overlap
            and overlap + 1 + len(words[start - 1]) + 1 + len(words[stop]) <= chunk_size
        ):
            overlap += 1 + len(words[start - 1])
            start -= 1
    return chunks


def chunk_post(text: str) -> list[str]:
    return chunk_text(text, POST_CHUNK_CHARS, POST_OVERLAP_CHARS)


def chunk_repository(text: str) -> list[str]:
    return chunk_text(text, REPOSITORY_CHUNK_CHARS, REPOSITORY_OVERLAP_CHARS)
