"""Read CSV and XLSX files as (line number, cells) rows, whatever their encoding.

Uploads are hostile until read: an XLSX is a zip, and 300 KB of it can unpack
to a 300 MB shared string that openpyxl would hold in memory. So before
openpyxl opens a workbook, `check_xlsx` reads the zip's directory (declared
sizes, which Python's zipfile enforces while inflating) and refuses archives
that unpack to more than IMPORT_MAX_UNCOMPRESSED_MB, members packed tighter
than any spreadsheet (a zip bomb), and a shared-strings part over
IMPORT_MAX_SHARED_STRINGS_MB (checked by streaming it, too). Rows are capped
at IMPORT_MAX_ROWS (an XLSX's declared dimension first, then while reading),
and cells at IMPORT_MAX_CELL_CHARS (Excel's own limit, 32,767): each refusal
is a `FileError` whose message says what to do.
"""

from __future__ import annotations

import codecs
import csv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app, has_app_context

from app.i18n import N_, gettext

SAMPLE_BYTES = 512 * 1024
CHINESE_FAMILY = {"gb2312", "gbk", "gb18030", "hz", "big5", "cp936"}
MB = 1024 * 1024
# Like Apache POI's ZipSecureFile: a member inflating more than 100 times (over
# a small grace size) is not a spreadsheet. Real sheets pack 5 to 30 times.
MAX_RATIO = 100
RATIO_GRACE_BYTES = MB
CSV_FIELD_LIMIT = 1 << 30  # the csv module's own cap; our cell check comes after it


@dataclass(frozen=True)
class Limits:
    """What an import may hold (config IMPORT_MAX_*)."""

    uncompressed_bytes: int = 200 * MB
    shared_strings_bytes: int = 50 * MB
    cell_chars: int = 32767
    rows: int = 1_000_000

    @classmethod
    def from_config(cls) -> Limits:
        """Return the limits of the current app (the defaults outside one)."""
        if not has_app_context():
            return cls()
        config, default = current_app.config, cls()
        return cls(
            uncompressed_bytes=int(config.get("IMPORT_MAX_UNCOMPRESSED_MB") or 200) * MB,
            shared_strings_bytes=int(config.get("IMPORT_MAX_SHARED_STRINGS_MB") or 50) * MB,
            cell_chars=int(config.get("IMPORT_MAX_CELL_CHARS") or default.cell_chars),
            rows=int(config.get("IMPORT_MAX_ROWS") or default.rows),
        )


class FileError(ValueError):
    """A file that cannot be read at all; `message` is a translatable msgid."""

    def __init__(self, message: str, **params: Any):
        super().__init__(message)
        self.message = message
        self.params = params


@dataclass
class Table:
    """A readable table: its headers and a way to iterate its rows."""

    headers: list[str]
    rows: Iterator[tuple[int, list[Any]]]
    encoding: str | None = None
    delimiter: str | None = None


def detect_encoding(sample: bytes) -> str:
    """Return the codec of a CSV sample: BOM, strict UTF-8, else charset-normalizer's guess."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(sample)
    names = [m.encoding.lower().replace("_", "") for m in matches]
    # GB18030 is a superset of GB2312/GBK: decode the whole family with it.
    if any(n in CHINESE_FAMILY or n.startswith("gb") for n in names) or _looks_chinese(sample):
        return "gb18030"
    best = matches.best()
    if best is None:
        raise FileError(N_("Could not tell the file's encoding; choose one explicitly."))
    return best.encoding


def _looks_chinese(sample: bytes) -> bool:
    """True when the bytes decode as GB18030 into mostly CJK text (short files fool guessers)."""
    try:
        text = codecs.getincrementaldecoder("gb18030")().decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    high = [c for c in text if ord(c) > 127]
    cjk = [c for c in high if "\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f"
           or "\uff00" <= c <= "\uffef"]
    return bool(high) and len(cjk) >= 0.8 * len(high)


def sniff_delimiter(text: str) -> str:
    """Return the delimiter of a CSV sample (comma unless clearly ; tab or |)."""
    lines = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(lines, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _megabytes(size: int) -> str:
    return f"{size / MB:.0f}" if size >= MB else f"{size / MB:.2f}"


def check_xlsx(path: Path, limits: Limits) -> None:
    """Refuse a workbook that would unpack too big (see the module docstring); cheap."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            total = sum(info.file_size for info in members)
            if total > limits.uncompressed_bytes:
                raise FileError(
                    N_("The file unpacks to %(size)s MB, more than the %(max)s MB an import may "
                       "hold (IMPORT_MAX_UNCOMPRESSED_MB). Split it into smaller files."),
                    size=_megabytes(total), max=_megabytes(limits.uncompressed_bytes))
            for info in members:
                ratio = info.file_size / max(info.compress_size, 1)
                if info.file_size > RATIO_GRACE_BYTES and ratio > MAX_RATIO:
                    raise FileError(
                        N_("Part %(member)s of the file unpacks %(ratio)s times its size, which "
                           "no spreadsheet does: it was not opened. Save the sheet again from "
                           "Excel, or as CSV."), member=info.filename, ratio=int(ratio))
            for info in members:
                if info.filename.lower().endswith("sharedstrings.xml"):
                    _check_shared_strings(archive, info, limits)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError):
        raise FileError(N_("The file is not a valid XLSX workbook.")) from None


def _check_shared_strings(archive: zipfile.ZipFile, info: zipfile.ZipInfo,
                          limits: Limits) -> None:
    """Refuse shared text over the limit: declared size first, then by streaming it."""
    too_big = FileError(
        N_("The file's shared text is more than %(max)s MB (IMPORT_MAX_SHARED_STRINGS_MB): "
           "split it into smaller files, or save it as CSV."),
        max=_megabytes(limits.shared_strings_bytes))
    if info.file_size > limits.shared_strings_bytes:
        raise too_big
    seen = 0
    with archive.open(info) as member:
        while chunk := member.read(MB):
            seen += len(chunk)
            if seen > limits.shared_strings_bytes:
                raise too_big


def too_many_rows(limits: Limits) -> FileError:
    return FileError(N_("The file has more than %(max)s rows (IMPORT_MAX_ROWS). Split it into "
                        "smaller files."), max=f"{limits.rows:,}")


@dataclass(frozen=True)
class TooLong:
    """A cell longer than IMPORT_MAX_CELL_CHARS, kept out of the row: a problem of its line."""

    length: int
    limit: int

    def reason(self) -> str:
        return gettext(N_("The cell is too long (%(length)s characters; at most %(max)s)."),
                       length=f"{self.length:,}", max=f"{self.limit:,}")

    def __str__(self) -> str:
        return ""


def mark_long_cells(cells: list[Any], limits: Limits) -> list[Any]:
    """Return the row with every over-long cell replaced by a `TooLong` marker."""
    return [TooLong(len(v), limits.cell_chars)
            if isinstance(v, str) and len(v) > limits.cell_chars else v for v in cells]


def check_cells(line: int, cells: list[Any], headers: list[str], limits: Limits) -> None:
    """Refuse a row with a cell longer than IMPORT_MAX_CELL_CHARS, naming line and column."""
    for index, value in enumerate(cells):
        if isinstance(value, str) and len(value) > limits.cell_chars:
            raise cell_too_long(line, headers[index] if index < len(headers) else index + 1,
                                len(value), limits)


def cell_too_long(line: int, column: Any, length: int | None, limits: Limits) -> FileError:
    return FileError(
        N_("Line %(line)s, column %(column)s: the cell is too long (%(length)s characters; at "
           "most %(max)s). Shorten it, or split the text over several fields."),
        line=line, column=column, length=f"{length:,}" if length else "?",
        max=f"{limits.cell_chars:,}")


def read_csv(path: Path, encoding: str | None = None, limits: Limits | None = None) -> Table:
    """Open a CSV file: encoding detected (or given), delimiter sniffed, lines counted."""
    limits = limits or Limits.from_config()
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)  # ours is checked per cell, with the line
    with open(path, "rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    encoding = encoding or detect_encoding(sample)
    if encoding.lower().replace("-", "") in ("utf8", "utf8sig"):
        encoding = "utf-8-sig"  # tolerate a BOM either way
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise FileError(N_("Unknown encoding %(encoding)s."), encoding=encoding) from None
    text_sample = sample.decode(encoding, errors="ignore")
    delimiter = sniff_delimiter(text_sample)
    fh = open(path, encoding=encoding, newline="", errors="strict")  # noqa: SIM115
    reader = csv.reader(fh, delimiter=delimiter)
    try:
        headers = next(reader)
    except StopIteration:
        fh.close()
        raise FileError(N_("The file is empty.")) from None
    except UnicodeDecodeError:
        fh.close()
        raise FileError(N_("The file is not in %(encoding)s; choose its encoding."),
                        encoding=encoding) from None

    headers = [h.strip() for h in headers]
    try:
        check_cells(1, headers, headers, limits)
    except FileError:
        fh.close()
        raise

    def rows() -> Iterator[tuple[int, list[Any]]]:
        count = 0
        try:
            start = reader.line_num + 1
            for cells in reader:
                if any(c.strip() for c in cells):
                    count += 1
                    if count > limits.rows:
                        raise too_many_rows(limits)
                    yield start, mark_long_cells(cells, limits)
                start = reader.line_num + 1
        except UnicodeDecodeError:
            raise FileError(
                N_("Line %(line)s is not in %(encoding)s; choose the file's encoding."),
                line=reader.line_num + 1, encoding=encoding,
            ) from None
        except csv.Error as exc:
            raise FileError(N_("Line %(line)s cannot be read as CSV (%(error)s)."),
                            line=start, error=str(exc)) from None
        finally:
            fh.close()

    return Table(headers, rows(), encoding, delimiter)


def read_xlsx(path: Path, sheet: str | None = None, limits: Limits | None = None) -> Table:
    """Open an XLSX file read-only: the first sheet or `sheet`, row numbers as lines."""
    from openpyxl import load_workbook

    limits = limits or Limits.from_config()
    check_xlsx(path, limits)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception:  # zip/xml errors: not a workbook
        raise FileError(N_("The file is not a valid XLSX workbook.")) from None
    if sheet:
        if sheet not in workbook.sheetnames:
            workbook.close()
            raise FileError(N_("No sheet named %(sheet)s (sheets: %(sheets)s)."), sheet=sheet,
                            sheets=", ".join(workbook.sheetnames))
        worksheet = workbook[sheet]
    else:
        worksheet = workbook.worksheets[0]
    declared = _declared_rows(worksheet)
    if declared is not None and declared > limits.rows + 1:  # + the header row
        workbook.close()
        raise too_many_rows(limits)
    iterator = worksheet.iter_rows(values_only=True)
    headers: list[str] | None = None
    line = 0
    for values in iterator:
        line += 1
        if any(v is not None and str(v).strip() for v in values):
            headers = ["" if v is None else str(v).strip() for v in values]
            break
    if headers is None:
        workbook.close()
        raise FileError(N_("The file is empty."))
    try:
        check_cells(line, headers, headers, limits)
    except FileError:
        workbook.close()
        raise

    def rows() -> Iterator[tuple[int, list[Any]]]:
        number, count = line, 0
        try:
            for values in iterator:
                number += 1
                if any(v is not None and str(v).strip() for v in values):
                    count += 1
                    if count > limits.rows:
                        raise too_many_rows(limits)
                    yield number, mark_long_cells(list(values), limits)
        finally:
            workbook.close()

    return Table(headers, rows())


def _declared_rows(worksheet: Any) -> int | None:
    """The sheet's row count as its <dimension> declares it (cheap; absent in some files)."""
    try:
        return worksheet.max_row
    except Exception:  # noqa: BLE001 - a missing or odd dimension is only no estimate
        return None


def is_xlsx(path: Path) -> bool:
    """True when the file is a workbook by its content (a zip) or its name."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    return magic == b"PK\x03\x04" or path.suffix.lower() in (".xlsx", ".xlsm")


def open_table(path: str | Path, encoding: str | None = None, sheet: str | None = None,
               limits: Limits | None = None) -> Table:
    """Open a CSV or XLSX file by its content (XLSX is a zip), not only its name."""
    path = Path(path)
    if is_xlsx(path):
        return read_xlsx(path, sheet, limits)
    return read_csv(path, encoding, limits)


def unpacked_size(path: str | Path) -> int:
    """Bytes of data in the file: its size, or for a workbook its declared unpacked size."""
    path = Path(path)
    if is_xlsx(path):
        try:
            with zipfile.ZipFile(path) as archive:
                return sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, OSError):
            pass
    return path.stat().st_size


__all__ = ["FileError", "Limits", "Table", "check_xlsx", "detect_encoding", "open_table",
           "read_csv", "read_xlsx", "unpacked_size"]
