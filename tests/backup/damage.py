"""Backup files damaged on purpose: a flipped byte, a cut-off end, a row the database refuses,
a consistently forged manifest."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from app.backup.format import SIGNATURE, BackupReader, BackupWriter


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


def rewrite_with_duplicate_phone(path: Path, out: Path, sign_with: str | None = None) -> Path:
    """A valid, checksummed backup whose last customer repeats the first one's unique phone.

    `sign_with`: the instance key the key holder signs the rewritten file with.
    """
    with BackupReader(str(path)) as reader, open(out, "wb") as fh:
        writer = BackupWriter(fh, sign_with=sign_with)
        tables = []
        for table in reader.tables:
            _member, sink = writer.table(table["name"])
            lines = list(reader.lines(table))
            if table["name"] == "customer":
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


def _line(values: list) -> bytes:
    return (json.dumps(values, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def forge_extra_admin(path: Path, out: Path, keep_signature: bool = True) -> Path:
    """The attack: add an Admin account to the data, recompute every count and SHA-256.

    The forged file agrees with itself in every checksum; only the signature
    (copied from the original, or dropped) can give it away.
    """
    with BackupReader(str(path)) as reader, open(out, "wb") as fh:
        writer = BackupWriter(fh)
        columns = {t["name"]: [c for c, _ in t["columns"]] for t in reader.tables}
        users = [json.loads(line) for line in reader.lines(
            next(t for t in reader.tables if t["name"] == "ab_user"))]
        admin = next(u for u in users if u[columns["ab_user"].index("username")] == "admin")
        user_id = max(u[0] for u in users) + 1
        tables = []
        for table in reader.tables:
            member, sink = writer.table(table["name"])
            lines = list(reader.lines(table))
            if table["name"] == "ab_user":
                mallory = list(admin)
                mallory[0] = user_id
                for name, value in (("username", "mallory"), ("email", "mallory@example.com")):
                    mallory[columns["ab_user"].index(name)] = value
                lines.append(_line(mallory))
            if table["name"] == "ab_user_role":
                links = [json.loads(line) for line in lines]
                cols = columns["ab_user_role"]
                role = next(r for r in links if r[cols.index("user_id")] == admin[0])
                lines.append(_line([max(r[0] for r in links) + 1 if c == "id" else user_id
                                    if c == "user_id" else role[cols.index(c)] for c in cols]))
            for line in lines:
                sink.write(line)
            tables.append({**table, "member": member, **sink.close()})
        writer.finish({**reader.manifest, "tables": tables,
                       "total_rows": sum(t["rows"] for t in tables)})
        original = reader._zf.read(SIGNATURE) if reader.signature is not None else None
    if keep_signature and original is not None:
        with zipfile.ZipFile(out, "a") as zf:
            zf.writestr(SIGNATURE, original)
    return out


def rewrite_with_missing_parent(path: Path, out: Path, sign_with: str | None = None) -> Path:
    """A valid, signed backup whose first `follow_up` points at a customer that does not exist.

    Restores load with foreign-key checks off (MariaDB, PostgreSQL as superuser),
    so only the check after the load can refuse it.
    """
    with BackupReader(str(path)) as reader, open(out, "wb") as fh:
        writer = BackupWriter(fh, sign_with=sign_with)
        tables = []
        for table in reader.tables:
            member, sink = writer.table(table["name"])
            lines = list(reader.lines(table))
            if table["name"] == "follow_up" and lines:
                column = [c for c, _ in table["columns"]].index("customer_id")
                row = json.loads(lines[0])
                row[column] = 999_999
                lines[0] = _line(row)
            for line in lines:
                sink.write(line)
            tables.append({**table, "member": member, **sink.close()})
        writer.finish({**reader.manifest, "tables": tables})
    return out
