"""Turn raw crawl text into plain text worth embedding.

Starts from the Handbook's ``clean_text`` (replace every character that is not a word character, whitespace
or ``.,!?`` with a space, then collapse whitespace) and fixes what that alone gets wrong on real crawls:

* Unicode "bold/italic" letters (``𝗠𝗟𝗢𝗽𝘀``), full-width forms and non-breaking spaces are folded to plain
  text (NFKC), and curly quotes and dashes to ASCII; zero-width characters and soft hyphens vanish.
* Markdown links keep their text and lose the URL; images, bare URLs and HTML tags go entirely; markdown
  escapes (``1\\.``), emphasis underscores and heading, quote and bullet markers are undone.
* Navigation chrome (Substack share widgets and footers, Medium's header and cookie banner, rules, lines
  with no word in them) is dropped line by line, before newlines are collapsed.
* A few characters that carry meaning for retrieval survive besides ``.,!?``: ``' " ( ) - : ; / % & + $ @``
  (so "don't", "A/B", "C++", "CI/CD", "99%" stay intact). Emoji and other symbols become spaces.

The result is a single line (whitespace collapsed), which is what the chunkers expect.
"""

from __future__ import annotations

import re
import unicodedata

_ZERO_WIDTH = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
    }
)

_MD_IMAGE = re.compile(r"!\[[^\]]*\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"]*\")?\)")
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"]*\")?\)")
_MD_REF_LINK = re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]")
_MD_REF_DEFINITION = re.compile(r"^\s*\[[^\]\n]+\]:\s+\S+.*$", re.MULTILINE)
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_HTML_TAG = re.compile(
    r"</?(?:a|abbr|b|blockquote|br|code|div|em|figcaption|figure|h[1-6]|hr|i|iframe|img|li|ol|p|pre|"
    r"source|span|strong|sub|sup|table|tbody|td|th|thead|tr|u|ul|video)\b[^>]*>",
    re.IGNORECASE,
)
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")
_LINE_MARKERS = re.compile(r"^\s*(?:(?:#{1,6}|>+|[*+\-](?=\s))\s*)+")
#: Underscores opening or closing a token are markdown emphasis (``_word_``, ``__bold__``) or icon-font
#: residue of crawled menus (``* __LLM Course``); inside a token (``snake_case``) they are kept.
_EDGE_UNDERSCORES = re.compile(r"(?<!\w)_+|_+(?!\w)")
_RULE = re.compile(r"^\s*(?:[*\-_=]\s*){3,}$")
#: A line that is only a host name with a subdomain ("decodingml.substack.com"): a site banner, not prose.
_BARE_DOMAIN = re.compile(r"^(?:[a-z0-9-]+\.){2,}[a-z]{2,}$")
_COPYRIGHT = re.compile(r"^(?:©|\(c\))\s*\d{4}\b", re.IGNORECASE)
_NOT_KEPT = re.compile(r"[^\w\s.,!?'\"()\-:;/%&+$@]")
_WHITESPACE = re.compile(r"\s+")
#: Hard-wrapped crawls break hyphenated words at the line end ("fine-\ntuning").
_WRAPPED_HYPHEN = re.compile(r"(?<=\w)-[ \t]*\n[ \t]*(?=\w)")

#: Whole lines that are site chrome, compared lower-cased with punctuation and markup removed.
_CRUFT_LINES = frozenset(
    {
        "share",
        "share this post",
        "subscribe",
        "subscribesign in",
        "sign in",
        "sign up",
        "copy link",
        "facebook",
        "twitter",
        "linkedin",
        "email",
        "note",
        "other",
        "comments",
        "restacks",
        "top",
        "latest",
        "discussions",
        "discussion about this post",
        "no posts",
        "ready for more?",
        "previousnext",
        "previous",
        "next",
        "start writingget the app",
        "substack is the home for great culture",
        "privacy terms collection notice",
        "unblock scripts",
        "listen",
        "follow",
        "open in app",
    }
)
_CRUFT_PREFIXES = (
    "this site requires javascript",
    "to make medium work, we log user data",
)
#: Medium's header chrome arrives glued to the text ("Open in appSign upSign inWrite...").
_INLINE_CRUFT = re.compile(r"Open in app(?:Sign up|Sign in|Write)*|(?<=\d)ListenShare|·Follow")


_KEY_NOISE = re.compile(r"[^\w\s?,]")
_WORD_CHAR = re.compile(r"\w")


def _line_key(line: str) -> str:
    return _WHITESPACE.sub(" ", _KEY_NOISE.sub(" ", line)).strip().lower()


def _is_cruft(line: str) -> bool:
    stripped = line.strip()
    if not stripped or _RULE.match(stripped) or not _WORD_CHAR.search(stripped):
        return True
    key = _line_key(stripped)
    return (
        key in _CRUFT_LINES
        or key.startswith(_CRUFT_PREFIXES)
        or bool(_BARE_DOMAIN.match(stripped))
        or bool(_COPYRIGHT.match(stripped))
    )


def _drop_chrome(text: str) -> str:
    """Remove navigation lines; after a "Share this post" widget also its repeated title and domain."""
    kept: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = _EDGE_UNDERSCORES.sub(" ", _LINE_MARKERS.sub("", lines[i]))
        i += 1
        if _line_key(line) == "share this post":
            # Substack's widget: "Share this post", the post title again, the site's domain.
            ahead = [j for j in range(i, min(i + 6, len(lines))) if lines[j].strip()][:2]
            if len(ahead) == 2 and _BARE_DOMAIN.match(lines[ahead[1]].strip()):
                i = ahead[1] + 1
            continue
        if not _is_cruft(line):
            kept.append(line)
    return "\n".join(kept)


def clean_text(text: str) -> str:
    """Plain, single-line text: markup, links, emoji, invisible characters and site chrome removed."""
    text = unicodedata.normalize("NFKC", text)
    text = _ZERO_WIDTH.sub("", text).translate(_QUOTES)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _WRAPPED_HYPHEN.sub("-", text)
    text = _MD_REF_DEFINITION.sub("", text)
    text = _MD_IMAGE.sub(" ", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_REF_LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _HTML_TAG.sub(" ", text)
    text = _MD_ESCAPE.sub(r"\1", text)
    text = _INLINE_CRUFT.sub(" ", text)
    text = _drop_chrome(text)
    text = _URL.sub(" ", text)  # again: emphasis removal can free a URL glued to "_"
    text = _NOT_KEPT.sub(" ", text)
    return _WHITESPACE.sub(" ", text).strip()
