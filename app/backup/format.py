"""The backup file: a zip holding one JSON-lines member per table and a manifest.

Layout of a `.sdbackup` file (a plain zip, written as a stream):

- `tables/NNN_<table>.jsonl` — the table's rows in primary-key order, one JSON
  array per line, values in a canonical, engine-independent form (see
  `encode_value`); deflated. With `BACKUP_ENCRYPTION_KEY` the member is
  `tables/NNN_<table>.jsonl.fernet` instead: one Fernet token per line, each
  the encryption of a zlib-compressed chunk of those same lines.
- `manifest.json` — written last: application version, schema digest, Alembic
  revision, time, engine, and per table the columns (name and type tag), the
  primary key, the row count and the SHA-256 of the table's canonical lines.
- `manifest.sig` (format 2) — the HMAC-SHA256 of `manifest.json`'s bytes under
  the instance's key (see `app.backup.signature`).

Because the manifest comes last, a truncated file has none and says so; zip's
CRC-32, Fernet's HMAC and the per-table SHA-256 catch altered bytes, and the
signature catches a file rewritten consistently (data, counts and digests).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import IO, Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.i18n import N_, gettext

FORMAT_NAME = "schemadesk-backup"
FORMAT_VERSION = 2  # 2: signed (manifest.sig); 1: unsigned, read with --allow-unsigned
SUFFIX = ".sdbackup"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
CHUNK_BYTES = 1 << 20  # plaintext per Fernet token; bounds memory whatever the table size
KEY_CHECK = b"schemadesk-backup-key-check"


class BackupError(Exception):
    """A backup that cannot be read, verified or restored; the message says why."""


# --- canonical values -------------------------------------------------------


def type_tag(type_: Any) -> str:
    """Return the engine-independent tag of a column type (how its values are written)."""
    from app.models.types import EncryptedText

    if isinstance(type_, EncryptedText):
        return "text"  # the ciphertext is backed up as it is stored
    if isinstance(type_, sa.types.TypeDecorator):
        type_ = type_.impl_instance
    if isinstance(type_, sa.Boolean):
        return "bool"
    if isinstance(type_, sa.Integer):
        return "int"
    if isinstance(type_, sa.Float):
        return "float"
    if isinstance(type_, sa.Numeric):
        scale = type_.scale if type_.scale is not None else ""
        precision = type_.precision if type_.precision is not None else ""
        return f"decimal:{precision}:{scale}"
    if isinstance(type_, sa.DateTime):
        return "datetime"
    if isinstance(type_, sa.Date):
        return "date"
    if isinstance(type_, sa.Time):
        return "time"
    if isinstance(type_, sa.types._Binary):
        return "bytes"
    if isinstance(type_, sa.JSON):
        return "json"
    if isinstance(type_, sa.Text):
        return "text"
    return "str"


def sql_type(tag: str) -> Any:
    """Return the generic SQLAlchemy type that reads and writes values of `tag`."""
    if tag.startswith("decimal:"):
        _, precision, scale = tag.split(":")
        return sa.Numeric(int(precision) if precision else None, int(scale) if scale else None)
    return {
        "bool": sa.Boolean(),
        "int": sa.BigInteger(),
        "float": sa.Float(),
        "datetime": sa.DateTime(),
        "date": sa.Date(),
        "time": sa.Time(),
        "bytes": sa.LargeBinary(),
        "json": sa.Text(),
        "text": sa.Text(),
        "str": sa.String(),
    }[tag]


def encoder(tag: str) -> Callable[[Any], Any] | None:
    """Return the function turning a database value into its canonical JSON value."""
    if tag.startswith("decimal:"):
        scale = tag.split(":")[2]
        if scale:
            quantum = Decimal(1).scaleb(-int(scale))

            def enc_decimal(v: Any) -> Any:
                if v is None:
                    return None
                if not isinstance(v, Decimal):
                    v = Decimal(str(v))
                return str(v.quantize(quantum))

            return enc_decimal
        return lambda v: None if v is None else str(Decimal(str(v)).normalize())
    if tag == "datetime":

        def enc_datetime(v: Any) -> Any:
            if v is None:
                return None
            if v.tzinfo is not None:
                v = v.astimezone(dt.UTC).replace(tzinfo=None)
            return v.isoformat()

        return enc_datetime
    if tag in ("date", "time"):
        return lambda v: None if v is None else v.isoformat()
    if tag == "bytes":
        return lambda v: None if v is None else base64.b64encode(bytes(v)).decode()
    if tag == "bool":
        return lambda v: None if v is None else bool(v)
    if tag == "float":
        return lambda v: None if v is None else float(v)
    return None  # int, str, text, json: as they come


def decoder(tag: str) -> Callable[[Any], Any] | None:
    """Return the function turning a canonical JSON value back into a Python value."""
    if tag.startswith("decimal:"):
        return lambda v: None if v is None else Decimal(v)
    if tag == "datetime":
        return lambda v: None if v is None else dt.datetime.fromisoformat(v)
    if tag == "date":
        return lambda v: None if v is None else dt.date.fromisoformat(v)
    if tag == "time":
        return lambda v: None if v is None else dt.time.fromisoformat(v)
    if tag == "bytes":
        return lambda v: None if v is None else base64.b64decode(v)
    return None


def row_encoder(tags: list[str]) -> Callable[[Any], bytes]:
    """Return a function turning one database row into its canonical line (bytes)."""
    encoders = [(i, e) for i, e in ((i, encoder(t)) for i, t in enumerate(tags)) if e]
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def encode(row: Any) -> bytes:
        values = list(row)
        for i, enc in encoders:
            values[i] = enc(values[i])
        return (dumps(values) + "\n").encode()

    return encode


def row_decoder(tags: list[str]) -> Callable[[bytes], list[Any]]:
    """Return a function turning a canonical line back into Python values."""
    decoders = [(i, d) for i, d in ((i, decoder(t)) for i, t in enumerate(tags)) if d]

    def decode(line: bytes) -> list[Any]:
        values = json.loads(line)
        for i, dec in decoders:
            values[i] = dec(values[i])
        return values

    return decode


# --- encryption -------------------------------------------------------------


def cipher(keys: str | list[str] | None) -> MultiFernet | None:
    """Return the cipher for BACKUP_ENCRYPTION_KEY (comma-separated, newest first)."""
    if not keys:
        return None
    if isinstance(keys, str):
        keys = [k.strip() for k in keys.split(",") if k.strip()]
    try:
        return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
    except (ValueError, TypeError) as exc:
        raise BackupError(
            gettext(N_("BACKUP_ENCRYPTION_KEY is not a valid Fernet key: %(error)s"),
                    error=str(exc))
        ) from exc


# --- writing ----------------------------------------------------------------


class TableWriter:
    """Writes one table's canonical lines into its member; counts and hashes them."""

    def __init__(self, zf: zipfile.ZipFile, member: str, fernet: MultiFernet | None):
        compress = zipfile.ZIP_STORED if fernet else zipfile.ZIP_DEFLATED
        info = zipfile.ZipInfo(member, date_time=(2000, 1, 1, 0, 0, 0))
        info.compress_type = compress
        if not fernet:  # speed over a few percent of size
            for attr in ("compress_level", "_compresslevel"):  # 3.13+, older
                try:
                    setattr(info, attr, 1)
                    break
                except AttributeError:
                    continue
        self._out: IO[bytes] = zf.open(info, "w", force_zip64=True)
        self._fernet = fernet
        self._buffer: list[bytes] = []
        self._buffered = 0
        self.rows = 0
        self.sha = hashlib.sha256()

    def write(self, line: bytes) -> None:
        self.rows += 1
        self.sha.update(line)
        self._buffer.append(line)
        self._buffered += len(line)
        if self._buffered >= CHUNK_BYTES:
            self._flush()

    def write_block(self, block: bytes, lines: int) -> None:
        """Write `lines` whole canonical lines at once (as `write` would, line by line)."""
        self.rows += lines
        self.sha.update(block)
        self._buffer.append(block)
        self._buffered += len(block)
        if self._buffered >= CHUNK_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        chunk = b"".join(self._buffer)
        self._buffer.clear()
        self._buffered = 0
        if self._fernet:
            self._out.write(self._fernet.encrypt(zlib.compress(chunk, 1)) + b"\n")
        else:
            self._out.write(chunk)

    def close(self) -> dict[str, Any]:
        self._flush()
        self._out.close()
        return {"rows": self.rows, "sha256": self.sha.hexdigest()}


class BackupWriter:
    """Writes a backup file: `table()` per table, then `finish(manifest)`."""

    def __init__(self, fileobj: IO[bytes], keys: str | list[str] | None = None,
                 sign_with: str | None = None):
        self._zf = zipfile.ZipFile(fileobj, "w", allowZip64=True)
        self.fernet = cipher(keys)
        self.sign_with = sign_with
        self._count = 0

    def table(self, name: str) -> tuple[str, TableWriter]:
        self._count += 1
        suffix = ".jsonl.fernet" if self.fernet else ".jsonl"
        member = f"tables/{self._count:03d}_{name}{suffix}"
        return member, TableWriter(self._zf, member, self.fernet)

    def finish(self, manifest: dict[str, Any]) -> None:
        manifest = dict(manifest, encrypted=self.fernet is not None)
        if self.fernet:
            manifest["key_check"] = self.fernet.encrypt(KEY_CHECK).decode()
        raw = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
        info = zipfile.ZipInfo(MANIFEST, date_time=(2000, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        self._zf.writestr(info, raw)
        if self.sign_with:
            from app.backup.signature import sign

            info = zipfile.ZipInfo(SIGNATURE, date_time=(2000, 1, 1, 0, 0, 0))
            self._zf.writestr(info, json.dumps(sign(raw, self.sign_with)))
        self._zf.close()


# --- reading ----------------------------------------------------------------


def _damage(path: str, exc: Exception) -> BackupError:
    """Name what is wrong with a file zip cannot open: truncated, altered or foreign."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as os_exc:
        return BackupError(str(os_exc))
    if head != b"PK\x03\x04":
        return BackupError(
            gettext(N_("%(file)s is not a SchemaDesk backup (or its first bytes were altered)."),
                    file=path)
        )
    return BackupError(
        gettext(
            N_("%(file)s is truncated or altered: its manifest at the end is missing or "
               "unreadable (%(error)s)."),
            file=path,
            error=str(exc),
        )
    )


class BackupReader:
    """Reads a backup file: the manifest, and each table's lines as a stream."""

    def __init__(self, path: str, keys: str | list[str] | None = None):
        self.path = str(path)
        try:
            self._zf = zipfile.ZipFile(self.path)
            self.manifest_bytes = self._zf.read(MANIFEST)
            self.manifest: dict[str, Any] = json.loads(self.manifest_bytes)
            names = self._zf.namelist()
            self.signature: dict[str, Any] | None = (
                json.loads(self._zf.read(SIGNATURE)) if SIGNATURE in names else None
            )
        except (zipfile.BadZipFile, KeyError, ValueError, zlib.error, EOFError) as exc:
            raise _damage(self.path, exc) from exc
        except OSError as exc:
            raise BackupError(str(exc)) from exc
        if self.manifest.get("format") != FORMAT_NAME:
            raise BackupError(gettext(N_("%(file)s is not a SchemaDesk backup."), file=self.path))
        if int(self.manifest.get("format_version", 0)) > FORMAT_VERSION:
            raise BackupError(
                gettext(N_("%(file)s was written by a newer SchemaDesk (format %(version)s)."),
                        file=self.path, version=self.manifest.get("format_version"))
            )
        self.fernet = None
        if self.manifest.get("encrypted"):
            if not keys:
                raise BackupError(
                    gettext(N_("%(file)s is encrypted: set BACKUP_ENCRYPTION_KEY to its key."),
                            file=self.path)
                )
            self.fernet = cipher(keys)
            try:
                self.fernet.decrypt(self.manifest["key_check"].encode())
            except (InvalidToken, KeyError) as exc:
                raise BackupError(
                    gettext(N_("%(file)s was encrypted with another key than "
                               "BACKUP_ENCRYPTION_KEY."), file=self.path)
                ) from exc

    @property
    def tables(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("tables", []))

    def members(self) -> list[str]:
        return [n for n in self._zf.namelist() if n not in (MANIFEST, SIGNATURE)]

    def lines(self, table: dict[str, Any]) -> Iterator[bytes]:
        """Yield the table's canonical lines; a damaged member raises BackupError."""
        for block in self.blocks(table):
            yield from io.BytesIO(block)

    def blocks(self, table: dict[str, Any]) -> Iterator[bytes]:
        """Yield the table's lines in blocks of whole lines (about 1 MB each).

        What a reader that hashes or copies the lines needs: no Python work per
        line. Joined, the blocks are exactly the lines `lines` yields.
        """
        member = table["member"]
        try:
            with self._zf.open(member) as raw:
                if self.fernet is not None:  # each token holds whole lines
                    for token in raw:
                        yield zlib.decompress(self.fernet.decrypt(token.rstrip(b"\n")))
                    return
                rest = b""
                while chunk := raw.read(CHUNK_BYTES):
                    chunk = rest + chunk
                    cut = chunk.rfind(b"\n") + 1
                    rest = chunk[cut:]
                    if cut:
                        yield chunk[:cut]
                if rest:
                    yield rest
        except KeyError as exc:
            raise BackupError(
                gettext(N_("%(file)s is altered: the data of table %(table)s is missing."),
                        file=self.path, table=table["name"])
            ) from exc
        except (zipfile.BadZipFile, zlib.error, EOFError, InvalidToken, OSError) as exc:
            raise BackupError(
                gettext(N_("%(file)s is altered or truncated in the data of table %(table)s "
                           "(%(error)s)."),
                        file=self.path, table=table["name"], error=str(exc) or type(exc).__name__)
            ) from exc

    def close(self) -> None:
        self._zf.close()

    def __enter__(self) -> BackupReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
