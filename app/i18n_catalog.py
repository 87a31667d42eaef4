"""Build the translation catalogs: extract every msgid, update zh_CN, compile.

`python -m app.i18n_catalog` extracts from app/ (Python keywords `_`, `gettext`,
`N_`, `lazy_gettext`, `lazy_text`, `ngettext`; Jinja templates), writes
`translations/messages.pot`, merges it into `translations/zh_CN/.../messages.po`
(new msgids arrive untranslated, obsolete ones are dropped) and compiles the .mo.
The test suite calls `missing_translations()` and fails on any untranslated msgid.
"""

from __future__ import annotations

import argparse
import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "translations"
PO = TRANSLATIONS / "zh_CN" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
KEYWORDS = {
    "_": None,
    "gettext": None,
    "N_": None,
    "lazy_gettext": None,
    "lazy_text": None,
    "ngettext": (1, 2),
    "_l": None,
}
METHOD_MAP = [
    ("**/templates/**.html", "jinja2.ext:babel_extract"),
    ("**.py", "python"),
]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.do", "silent": "false"}}


def extract() -> Catalog:
    """Return a catalog of every msgid our code and templates use."""
    catalog = Catalog(project="SchemaDesk", charset="utf-8")
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT / "app"),
        method_map=METHOD_MAP,
        options_map=OPTIONS,
        keywords=KEYWORDS,
        strip_comment_tags=True,
    ):
        if isinstance(message, tuple):
            catalog.add(message, None, [(f"app/{filename}", lineno)], context=context)
        elif message:
            catalog.add(message, None, [(f"app/{filename}", lineno)], context=context)
    return catalog


def load_po() -> Catalog:
    if not PO.exists():
        return Catalog(locale="zh_CN", project="SchemaDesk")
    with PO.open("rb") as fh:
        return read_po(fh, locale="zh_CN")


def missing_translations() -> list[str]:
    """Msgids used in the code that zh_CN does not translate."""
    po = load_po()
    missing = []
    for message in extract():
        if not message.id:
            continue
        found = po.get(message.id)
        if (
            found is None
            or not found.string
            or (isinstance(found.string, tuple) and not all(found.string))
        ):
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing


def update() -> int:
    """Write the .pot, merge into zh_CN, compile; return how many are untranslated."""
    template = extract()
    TRANSLATIONS.mkdir(exist_ok=True)
    with (TRANSLATIONS / "messages.pot").open("wb") as fh:
        write_po(fh, template, omit_header=False, sort_output=True, include_lineno=False)
    po = load_po()
    po.update(template, no_fuzzy_matching=True)
    po.obsolete.clear()
    PO.parent.mkdir(parents=True, exist_ok=True)
    with PO.open("wb") as fh:
        write_po(fh, po, sort_output=True, width=100, include_lineno=False)
    with MO.open("wb") as fh:
        write_mo(fh, po)
    return len(missing_translations())


@contextmanager
def catalog_lock() -> Iterator[None]:
    """Serialise catalog updates: several people (or helpers) may run this at once."""
    TRANSLATIONS.mkdir(exist_ok=True)
    with (TRANSLATIONS / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def fill(translations: dict[str, str]) -> int:
    """Set zh_CN strings for msgids (after an update); return how many were set."""
    po = load_po()
    done = 0
    for msgid, text in translations.items():
        message = po.get(msgid)
        if message is not None and text:
            message.string = text
            done += 1
    with PO.open("wb") as fh:
        write_po(fh, po, sort_output=True, width=100, include_lineno=False)
    with MO.open("wb") as fh:
        write_mo(fh, po)
    return done


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fill", metavar="JSON",
                        help="a JSON object {msgid: zh text} to write into zh_CN")
    parser.add_argument("--missing", action="store_true", help="list untranslated msgids")
    args = parser.parse_args(argv)
    with catalog_lock():
        untranslated = update()
        if args.fill:
            data = json.loads(Path(args.fill).read_text(encoding="utf-8"))
            print(f"filled: {fill(data)}")
            untranslated = len(missing_translations())
    print(f"untranslated: {untranslated}")
    if args.missing:
        for msgid in missing_translations():
            print(json.dumps(msgid, ensure_ascii=False))


if __name__ == "__main__":
    main()
