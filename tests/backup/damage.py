"""Backup files damaged on purpose: a flipped byte, a cut-off end, a row the database refuses."""

from __future__ import annotations

import zipfile
from pathlib import Path

from app.backup.format import BackupReader, BackupWriter


def flip_byte_in_table(path: Path, table: str, out: Path) -> Path:
    """Copy `path` to `out` with one byte of `table`'s compressed rows inverted."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(f"_{table}.jsonl"))
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


def truncate(path: Path, out: Path, keep: float = 0.6) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def rewrite_with_duplicate_phone(path: Path, out: Path) -> Path:
    """A valid, checksummed backup whose last customer repeats the first one's unique phone."""
    with BackupReader(str(path)) as reader, open(out, "wb") as fh:
        writer = BackupWriter(fh)
        tables = []
        for table in reader.tables:
            _member, sink = writer.table(table["name"])
            lines = list(reader.lines(table))
            if table["name"] == "customer":
                import json

                phone = [c for c, _ in table["columns"]].index("phone")
                rows = [json.loads(line) for line in lines]
                rows[0][phone] = rows[-1][phone] = "13900000000"
                lines = [(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
                         .encode() for r in rows]
            for line in lines:
                sink.write(line)
            tables.append({**table, "member": _member, **sink.close()})
        writer.finish({**reader.manifest, "tables": tables})
    return out
