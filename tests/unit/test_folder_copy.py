"""Copies of a store folder: the same bytes, the holes kept, the lock left behind."""

from __future__ import annotations

from pathlib import Path

from rag_gateway.rag.retrieval.stores.folder_copy import copy_store_folder

MIB = 1 << 20


def _write_sparse(path: Path, size: int, data: dict[int, bytes]) -> None:
    """A file of ``size`` bytes, holes but for ``data`` (offset -> bytes), as the engine leaves them."""
    with path.open("wb") as file:
        file.truncate(size)
        for offset, chunk in data.items():
            file.seek(offset)
            file.write(chunk)


def test_a_copy_has_the_same_bytes_and_keeps_the_holes(tmp_path: Path) -> None:
    source = tmp_path / "store"
    (source / "embedded_articles" / "wal").mkdir(parents=True)
    wal = source / "embedded_articles" / "wal" / "open-1"
    _write_sparse(wal, 32 * MIB, {0: b"entry" * 100, 5 * MIB + 3: b"\x01\x02", 9 * MIB: b"z" * 70_000})
    ends_in_hole = source / "embedded_articles" / "page_0.dat"
    _write_sparse(ends_in_hole, 8 * MIB, {10: b"payload"})
    (source / "store.json").write_text("{}")
    (source / ".lock").write_text("")

    copy = tmp_path / "copy"
    copy_store_folder(source, copy)

    for original in (wal, ends_in_hole, source / "store.json"):
        copied = copy / original.relative_to(source)
        assert copied.stat().st_size == original.stat().st_size
        assert copied.read_bytes() == original.read_bytes()
    assert not (copy / ".lock").exists()
    if wal.stat().st_blocks * 512 < 4 * MIB:  # this file system keeps holes: the copy must too
        copied_wal = copy / wal.relative_to(source)
        assert copied_wal.stat().st_blocks * 512 < 4 * MIB
