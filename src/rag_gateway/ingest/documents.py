"""Load and validate ingest files: the Handbook's data-warehouse export, as typed records.

Each file is a JSON array of ``{"_id", "content", "platform", "author_id", "author_full_name", "link"}``.
The kind of a record (and so its collection) is decided, in this order, by:

1. an explicit ``"type"`` field: ``"article"``, ``"post"`` or ``"repository"``;
2. the file name: ``articles*.json``, ``posts*.json``, ``repositories*.json`` (case-insensitive);
3. the shape of ``content``: a ``Title`` or ``Content`` key makes an article (either one, so an article
   missing the other is reported as a broken article rather than stored as a post); a top-level ``name``
   with a ``content`` dict of file path -> text makes a repository; anything else is a post.

Every file and record is checked before anything is written, so one bad record never leaves a half-loaded
store; all problems found are reported together, each naming the file, the record index and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from rag_gateway.ingest.errors import IngestError

#: How many problems one IngestError lists before summarising the rest.
MAX_REPORTED_PROBLEMS = 10

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class DocumentKind(StrEnum):
    ARTICLE = "article"
    POST = "post"
    REPOSITORY = "repository"


COLLECTION_BY_KIND: dict[DocumentKind, str] = {
    DocumentKind.ARTICLE: "embedded_articles",
    DocumentKind.POST: "embedded_posts",
    DocumentKind.REPOSITORY: "embedded_repositories",
}

_FILE_PREFIXES: tuple[tuple[str, DocumentKind], ...] = (
    ("articles", DocumentKind.ARTICLE),
    ("posts", DocumentKind.POST),
    ("repositories", DocumentKind.REPOSITORY),
)


class _Document(BaseModel):
    """Fields every export record carries; unknown fields (``type``, crawler extras) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    kind: ClassVar[DocumentKind]

    id: NonEmptyStr = Field(alias="_id")
    author_id: NonEmptyStr
    author_full_name: NonEmptyStr
    platform: str | None = None
    link: str | None = None

    @property
    def collection(self) -> str:
        return COLLECTION_BY_KIND[self.kind]

    @property
    def title(self) -> str | None:
        return None

    def text(self) -> str:
        """The raw text to clean and chunk."""
        raise NotImplementedError


class ArticleContent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    title: str | None = Field(None, alias="Title")
    subtitle: str | None = Field(None, alias="Subtitle")
    content: str = Field(alias="Content")
    language: str | None = None


class ArticleDocument(_Document):
    kind: ClassVar[DocumentKind] = DocumentKind.ARTICLE
    content: ArticleContent

    @property
    def title(self) -> str | None:
        return self.content.title

    def text(self) -> str:
        # The Handbook joins every content value, language code included; title and subtitle are kept
        # (they carry the topic) but ``language`` is metadata, not text.
        parts = (self.content.title, self.content.subtitle, self.content.content)
        return "\n\n".join(part for part in parts if part)


class PostDocument(_Document):
    kind: ClassVar[DocumentKind] = DocumentKind.POST
    #: A dict of text fields (``{"text": ...}``, ``{"Post text": ...}``); non-string values are ignored.
    content: Annotated[dict[str, Any], Field(min_length=1)]
    image: str | None = None

    def text(self) -> str:
        return "\n\n".join(value for value in self.content.values() if isinstance(value, str) and value)


class RepositoryDocument(_Document):
    kind: ClassVar[DocumentKind] = DocumentKind.REPOSITORY
    name: NonEmptyStr
    #: File path -> file text.
    content: Annotated[dict[str, str], Field(min_length=1)]

    @property
    def title(self) -> str | None:
        return self.name

    def text(self) -> str:
        # The path heads each file so a chunk can be matched by the file it comes from.
        return "\n\n".join(f"{path}\n{body}" for path, body in self.content.items() if body)


Document = ArticleDocument | PostDocument | RepositoryDocument

_MODEL_BY_KIND: dict[DocumentKind, type[Document]] = {
    DocumentKind.ARTICLE: ArticleDocument,
    DocumentKind.POST: PostDocument,
    DocumentKind.REPOSITORY: RepositoryDocument,
}


def kind_from_filename(path: Path) -> DocumentKind | None:
    stem = path.stem.lower()
    for prefix, kind in _FILE_PREFIXES:
        if stem.startswith(prefix):
            return kind
    return None


def infer_kind(record: dict[str, Any]) -> DocumentKind:
    """Guess the kind from the shape of a record that names none."""
    content = record.get("content")
    if isinstance(content, dict):
        if "Title" in content or "Content" in content:
            return DocumentKind.ARTICLE
        if "name" in record and content and all(isinstance(v, str) for v in content.values()):
            return DocumentKind.REPOSITORY
    return DocumentKind.POST


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, directories as their ``*.json`` files (sorted); each file once, in order."""
    files: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.json") if p.is_file())
            if not found:
                raise IngestError(f"{path}: directory has no *.json files")
        elif path.is_file():
            found = [path]
        else:
            raise IngestError(f"{path}: no such file or directory")
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _describe_validation_error(error: ValidationError) -> str:
    """One line per record: missing fields together, then each other problem with its field."""
    missing: list[str] = []
    other: list[str] = []
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or "<record>"
        if item["type"] == "missing":
            missing.append(f"'{field}'")
        else:
            other.append(f"field '{field}': {item['msg']}")
    if missing:
        other.insert(0, f"missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    return "; ".join(other)


def _parse_record(record: object, file_kind: DocumentKind | None) -> Document | str:
    """A typed document, or what is wrong with the record."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {_json_type(record)}"
    if "type" in record:
        try:
            kind = DocumentKind(record["type"])
        except ValueError:
            return f"field 'type': must be 'article', 'post' or 'repository', got {record['type']!r}"
    else:
        kind = file_kind or infer_kind(record)
    try:
        return _MODEL_BY_KIND[kind].model_validate(record)
    except ValidationError as error:
        return f"{kind.value}: {_describe_validation_error(error)}"


def load_file(path: Path) -> tuple[list[Document], list[str]]:
    """Parse one file; returns the valid documents and the problems (each naming file and record)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return [], [f"{path}: cannot read: {error}"]
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        return [], [f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"]
    if not isinstance(data, list):
        return [], [f"{path}: expected a JSON array of documents, got a JSON {_json_type(data)}"]
    file_kind = kind_from_filename(path)
    documents: list[Document] = []
    problems: list[tuple[int, str]] = []
    for index, record in enumerate(data):
        parsed = _parse_record(record, file_kind)
        if isinstance(parsed, str):
            problems.append((index, parsed))
        else:
            documents.append(parsed)
    if len(problems) > 1 and not documents:
        # Probably not an export at all (e.g. queries.json in the same folder): say so once.
        index, problem = problems[0]
        return [], [f"{path}: none of its {len(data)} records is a document (record {index}: {problem})"]
    return documents, [f"{path}: record {index}: {problem}" for index, problem in problems]


def load_documents(paths: Sequence[Path]) -> list[Document]:
    """Every document of every file, or an IngestError listing every problem (nothing half-loaded)."""
    documents: list[Document] = []
    problems: list[str] = []
    first_seen: dict[tuple[str, str], Path] = {}
    for path in expand_paths(paths):
        file_documents, file_problems = load_file(path)
        problems.extend(file_problems)
        for document in file_documents:
            # Chunk ids derive from (collection, document id): two documents sharing an id would
            # overwrite each other's chunks.
            key = (document.collection, document.id)
            if key in first_seen:
                problems.append(
                    f"{path}: duplicate {document.kind.value} id {document.id!r} "
                    f"(already in {first_seen[key]})"
                )
            else:
                first_seen[key] = path
            documents.append(document)
    if problems:
        shown = problems[:MAX_REPORTED_PROBLEMS]
        more = len(problems) - len(shown)
        message = "invalid input, nothing was written:\n  " + "\n  ".join(shown)
        if more:
            message += f"\n  ... and {more} more problem(s)"
        raise IngestError(message)
    return documents
