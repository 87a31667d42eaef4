"""Read CSV and XLSX files as (line number, cells) rows, whatever their encoding."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.i18n import N_

SAMPLE_BYTES = 512 * 1024
CHINESE_FAMILY = {"gb2312", "gbk", "gb18030", "hz", "big5", "cp936"}


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


def read_csv(path: Path, encoding: str | None = None) -> Table:
    """Open a CSV file: encoding detected (or given), delimiter sniffed, lines counted."""
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

    def rows() -> Iterator[tuple[int, list[Any]]]:
        try:
            start = reader.line_num + 1
            for cells in reader:
                if any(c.strip() for c in cells):
                    yield start, cells
                start = reader.line_num + 1
        except UnicodeDecodeError:
            raise FileError(
                N_("Line %(line)s is not in %(encoding)s; choose the file's encoding."),
                line=reader.line_num + 1, encoding=encoding,
            ) from None
        finally:
            fh.close()

    return Table([h.strip() for h in headers], rows(), encoding, delimiter)


def read_xlsx(path: Path, sheet: str | None = None) -> Table:
    """Open an XLSX file read-only: the first sheet or `sheet`, row numbers as lines."""
    from openpyxl import load_workbook

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

    def rows() -> Iterator[tuple[int, list[Any]]]:
        number = line
        try:
            for values in iterator:
                number += 1
                if any(v is not None and str(v).strip() for v in values):
                    yield number, list(values)
        finally:
            workbook.close()

    return Table(headers, rows())


def open_table(path: str | Path, encoding: str | None = None, sheet: str | None = None) -> Table:
    """Open a CSV or XLSX file by its content (XLSX is a zip), not only its name."""
    path = Path(path)
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == b"PK\x03\x04" or path.suffix.lower() in (".xlsx", ".xlsm"):
        return read_xlsx(path, sheet)
    return read_csv(path, encoding)


__all__ = ["FileError", "Table", "detect_encoding", "open_table", "read_csv", "read_xlsx"]
