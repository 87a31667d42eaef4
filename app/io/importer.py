"""Import rows from CSV/XLSX into an entity: map headers, parse, validate, upsert.

`import_file(entity, path, ...)` reads the file, maps its headers to fields (by
name or by either label, ignoring case and spaces), parses every cell like a
person would read it, applies the same validation as the forms, and writes the
good rows in chunks, one transaction per chunk. With the entity's `import_key`
(or a unique field present in the file) existing records are updated instead
of duplicated, and rows that would change nothing are left alone — so
importing the same file twice changes nothing the second time. Bad rows are
reported with their file line and reason, and collected in an error-report CSV.
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.audit import record_event
from app.context import current_actor
from app.i18n import N_, current_lang, gettext
from app.io.reader import FileError, TooLong, open_table
from app.models import column_default, utcnow
from app.records import records, workflow
from app.records.validation import check_value
from app.records.values import CellError, cell_text, is_blank, parse_cell, split_many
from app.schema.spec import EntitySpec, FieldSpec
from app.state import state

CHUNK_SIZE = 1000
PREVIEW_ROWS = 20
MAX_LISTED_PROBLEMS = 200


def normalise_header(text: str) -> str:
    """Return a header folded for matching: no case, spaces, underscores, dashes or '*'."""
    return re.sub(r"[\s_\-*＊]+", "", str(text or "")).casefold()


@dataclass
class RowProblem:
    line: int
    reasons: list[str]


@dataclass
class ImportResult:
    """What an import did (or, for a dry run, would do)."""

    entity: str
    dry_run: bool
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    columns: dict[str, str] = field(default_factory=dict)  # header -> field name
    unknown_columns: list[str] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    preview: list[dict[str, Any]] = field(default_factory=list)
    error_file: str | None = None
    key: str | None = None
    encoding: str | None = None

    def counts(self) -> dict[str, int]:
        return {"total": self.total, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "rejected": self.rejected}


def map_headers(entity: EntitySpec, headers: list[str]) -> tuple[dict[int, FieldSpec], list[str]]:
    """Return {column index: field} and the headers that match no field."""
    names: dict[str, FieldSpec] = {}
    for f in entity.fields:
        for alias in (f.name, f.column_name, f.label.en, f.label.zh):
            if alias:
                names.setdefault(normalise_header(alias), f)
    mapping: dict[int, FieldSpec] = {}
    unknown: list[str] = []
    taken: set[str] = set()
    for index, header in enumerate(headers):
        f = names.get(normalise_header(header))
        if f is None or f.name in taken or f.readonly:
            if header:
                unknown.append(header)
            continue
        taken.add(f.name)
        mapping[index] = f
    return mapping, unknown


def _message(message: str, **params: Any) -> str:
    return gettext(message, **params)


class Importer:
    """One import run over one file into one entity."""

    def __init__(self, entity_name: str, dry_run: bool = False,
                 progress: Callable[[int, int | None], None] | None = None,
                 report_dir: str | Path | None = None):
        st = state()
        self.st = st
        self.entity = st.spec.entity(entity_name)
        self.table = st.models.table(entity_name)
        self.session = st.db.session
        self.dry_run = dry_run
        self.progress = progress
        self.report_dir = Path(report_dir or Path(current_app.config["UPLOAD_DIR"]) / "reports")
        self.result = ImportResult(entity=entity_name, dry_run=dry_run)
        self.seen: dict[str, dict[Any, int]] = {}
        self._report: Any = None
        self._report_fh: Any = None
        self.service = records(entity_name)
        self.fields_by_name = {f.name: f for f in self.entity.fields}

    # -- the pieces --------------------------------------------------------

    def _key_field(self, mapped: list[FieldSpec]) -> FieldSpec | None:
        names = {f.name for f in mapped}
        if self.entity.import_key and self.entity.import_key in names:
            return self.entity.field(self.entity.import_key)
        for f in mapped:
            if f.unique and not f.encrypted and not f.is_relation:
                return f
        return None

    def _resolve(self, f: FieldSpec, texts: set[str]) -> dict[str, Any]:
        """Return {cell text: id, or a list of ids when ambiguous} for relation cells."""
        if not texts:
            return {}
        found: dict[str, Any] = {}
        if f.type == "user":
            users = self.st.models.metadata.tables["ab_user"]
            for row in self.session.execute(
                sa.select(users.c.id, users.c.username).where(users.c.username.in_(texts))
            ):
                found[row.username] = row.id
            title_col = None
            target = users
        else:
            target_spec = self.st.spec.entity(f.to)  # type: ignore[arg-type]
            target = self.st.models.table(target_spec.name)
            title = target_spec.title
            title_col = target.c[title] if title and not target_spec.field(title).encrypted \
                and not target_spec.field(title).is_relation else None
            if title_col is not None:
                for chunk in _chunks(sorted(texts), 500):
                    for row in self.session.execute(
                        sa.select(target.c.id, title_col).where(title_col.in_(chunk))
                    ):
                        key = str(row[1])
                        if key in found:
                            found[key] = [*_as_list(found[key]), row.id]
                        else:
                            found[key] = row.id
        numbers = {int(t) for t in texts if t.isdigit() and t not in found}
        if numbers:
            for row in self.session.execute(sa.select(target.c.id).where(target.c.id.in_(numbers))):
                found[str(row.id)] = row.id
        if f.type == "user" or not found:
            return found
        # Only records the importer could pick in the form: the record service decides.
        ids = sorted({i for hit in found.values() for i in _as_list(hit)})
        picker = records(f.to)  # type: ignore[arg-type]
        reachable = set().union(*(picker.reachable_ids(part, picker=True)
                                  for part in _chunks(ids, 500)))
        scoped: dict[str, Any] = {}
        for text, hit in found.items():
            kept = [i for i in _as_list(hit) if i in reachable]
            if kept:
                scoped[text] = kept[0] if len(kept) == 1 else kept
        return scoped

    def _report_row(self, line: int, cells: list[Any], reasons: list[str], headers: list[str]):
        self.result.rejected += 1
        if len(self.result.problems) < MAX_LISTED_PROBLEMS:
            self.result.problems.append(RowProblem(line, reasons))
        if self._report is None:
            self.report_dir.mkdir(parents=True, exist_ok=True)
            path = self.report_dir / f"{self.entity.name}-errors-{uuid.uuid4().hex[:12]}.csv"
            self._report_fh = open(path, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
            self._report = csv.writer(self._report_fh)
            self._report.writerow([gettext(N_("Line")), *headers, gettext(N_("Reason"))])
            self.result.error_file = str(path)
        self._report.writerow([line, *(neutralise(cell_text(c)) if c is not None else ""
                                       for c in cells), "; ".join(reasons)])

    # -- the run -----------------------------------------------------------

    def run(self, path: str | Path, encoding: str | None = None,
            sheet: str | None = None) -> ImportResult:
        """Import the file; return the counts, problems and error report."""
        table = open_table(path, encoding=encoding, sheet=sheet)
        self.result.encoding = table.encoding
        mapping, unknown = map_headers(self.entity, table.headers)
        self.result.unknown_columns = unknown
        self.result.columns = {table.headers[i]: f.name for i, f in mapping.items()}
        if not mapping:
            raise FileError(N_("No column of the file matches a field of %(entity)s."),
                            entity=self.entity.label.get(current_lang()))
        key = self._key_field(list(mapping.values()))
        self.result.key = key.name if key else None
        headers = table.headers
        chunk: list[tuple[int, list[Any]]] = []
        try:
            for line, cells in table.rows:
                chunk.append((line, cells))
                if len(chunk) >= CHUNK_SIZE:
                    self._chunk(chunk, mapping, key, headers)
                    chunk = []
            if chunk:
                self._chunk(chunk, mapping, key, headers)
        finally:
            if self._report_fh is not None:
                self._report_fh.close()
        return self.result

    def _chunk(self, rows: list[tuple[int, list[Any]]], mapping: dict[int, FieldSpec],
               key: FieldSpec | None, headers: list[str]) -> None:
        entity, tbl = self.entity, self.table
        by_name = self.fields_by_name
        parsed: list[tuple[int, list[Any], dict[str, Any], dict[str, str], dict[str, list[str]],
                           list[str]]] = []
        rel_texts: dict[str, set[str]] = {}
        lang = current_lang()
        for line, cells in rows:
            values: dict[str, Any] = {}
            relations: dict[str, str] = {}
            many: dict[str, list[str]] = {}
            reasons: list[str] = []
            for index, f in mapping.items():
                raw = cells[index] if index < len(cells) else None
                label = f.label.get(lang)
                if isinstance(raw, TooLong):
                    reasons.append(f"{label}: {raw.reason()}")
                    continue
                if f.is_many:
                    many[f.name] = split_many(raw)
                    rel_texts.setdefault(f.name, set()).update(many[f.name])
                elif f.is_foreign_key:
                    if not is_blank(raw):
                        relations[f.name] = cell_text(raw)
                        rel_texts.setdefault(f.name, set()).add(relations[f.name])
                    else:
                        values[f.name] = None
                else:
                    try:
                        values[f.name] = parse_cell(raw, f)
                    except CellError as exc:
                        reasons.append(f"{label}: {gettext(exc.message, **exc.params)}")
            parsed.append((line, cells, values, relations, many, reasons))
        resolved = {name: self._resolve(by_name[name], texts)
                    for name, texts in rel_texts.items()}

        existing: dict[Any, Any] = {}
        if key is not None:
            keys = {p[2].get(key.name) for p in parsed} - {None}
            for part in _chunks(list(keys), 500):
                for row in self.session.execute(sa.select(tbl).where(tbl.c[key.name].in_(part))):
                    existing[row._mapping[key.name]] = row
        visible: set[int] | None = None
        if existing and self.service.row_clause() is not None:
            visible = self.service.reachable_ids([r.id for r in existing.values()])
        unique_fields = [f for f in mapping.values()
                         if f.unique and not f.encrypted and not f.is_relation]
        taken: dict[str, dict[Any, int]] = {}
        for f in unique_fields:
            if key is not None and f.name == key.name:
                continue
            vals = {p[2].get(f.name) for p in parsed} - {None}
            taken[f.name] = {}
            for part in _chunks(list(vals), 500):
                for row in self.session.execute(
                    sa.select(tbl.c.id, tbl.c[f.name]).where(tbl.c[f.name].in_(part))
                ):
                    taken[f.name][row[1]] = row.id
        m2m_existing: dict[tuple[str, int], set[int]] = {}
        many_fields = [f for f in mapping.values() if f.is_many]
        if many_fields and existing:
            ids = [r.id for r in existing.values()]
            for f in many_fields:
                assoc = self.st.models.m2m_tables[(entity.name, f.name)]
                left, right = list(assoc.c)
                for row in self.session.execute(sa.select(left, right).where(left.in_(ids))):
                    m2m_existing.setdefault((f.name, row[0]), set()).add(row[1])

        defaults = self.service.new_record_defaults()
        bypass_workflow = workflow.bypasses(self.service)
        actor_id = current_actor().user_id
        now = utcnow()
        inserts: list[tuple[dict[str, Any], dict[str, list[int]]]] = []
        pending: list[tuple[int, list[Any], str]] = []
        pending_updates: list[tuple[int, list[Any], str]] = []
        updates: list[tuple[int, dict[str, Any], dict[str, list[int]]]] = []
        for line, cells, values, relations, many, reasons in parsed:
            self.result.total += 1
            columns: dict[str, Any] = {}
            for name, text in relations.items():
                f = by_name[name]
                hit = resolved[name].get(text)
                if hit is None:
                    reasons.append(f"{f.label.get(lang)}: " + gettext(
                        N_("No %(target)s named '%(value)s'."),
                        target=self._target_label(f), value=text))
                elif isinstance(hit, list):
                    reasons.append(f"{f.label.get(lang)}: " + gettext(
                        N_("Several %(target)s are named '%(value)s'; use the ID."),
                        target=self._target_label(f), value=text))
                else:
                    columns[f.column_name] = hit
            for name, value in values.items():
                f = by_name[name]
                columns[f.column_name] = value
                if value is not None:
                    for reason in check_value(f, value):
                        reasons.append(f"{f.label.get(lang)}: {reason}")
            links: dict[str, list[int]] = {}
            for name, texts in many.items():
                f = by_name[name]
                ids: list[int] = []
                for text in texts:
                    hit = resolved[name].get(text)
                    if hit is None or isinstance(hit, list):
                        reasons.append(f"{f.label.get(lang)}: " + gettext(
                            N_("No %(target)s named '%(value)s'."),
                            target=self._target_label(f), value=text))
                    elif hit not in ids:
                        ids.append(hit)
                links[name] = ids
            current = None
            key_value = values.get(key.name) if key is not None else None
            if key is not None and key_value is not None:
                first = self.seen.setdefault(key.name, {}).get(key_value)
                if first is not None:
                    reasons.append(gettext(
                        N_("%(field)s '%(value)s' is also on line %(line)s of this file."),
                        field=key.label.get(lang), value=key_value, line=first))
                current = existing.get(key_value)
                if current is not None and visible is not None and current.id not in visible:
                    reasons.append(gettext(N_("You may not change this existing record.")))
            for f in unique_fields:
                value = values.get(f.name)
                if value is None or (key is not None and f.name == key.name):
                    continue
                first = self.seen.setdefault(f.name, {}).get(value)
                if first is not None:
                    reasons.append(gettext(
                        N_("%(field)s '%(value)s' is also on line %(line)s of this file."),
                        field=f.label.get(lang), value=value, line=first))
                other = taken.get(f.name, {}).get(value)
                if other is not None and (current is None or other != current.id):
                    reasons.append(gettext(
                        N_("Another %(entity)s already has this %(field)s."),
                        entity=entity.label.get(lang), field=f.label.get(lang)))
            # a cell that could not be read already has its reason: not "required" too
            unreadable = {f.name for f in mapping.values()
                          if not f.is_relation and f.type != "user" and f.name not in values}
            if current is None:
                for column, value in defaults.items():
                    if columns.get(column) is None:
                        columns[column] = value
            # a blank cell means what it means on a new record: the default
            for f in (entity.fields if current is None else mapping.values()):
                if f.is_many or f.readonly or f.name in relations or f.name in unreadable:
                    continue
                if columns.get(f.column_name) is None and column_default(f) is not None:
                    default = column_default(f)
                    columns[f.column_name] = default() if callable(default) else default
                if f.required and columns.get(f.column_name) is None:
                    reasons.append(f"{f.label.get(lang)}: " + gettext(
                        N_("This field is required.")))
            for f in unique_fields:
                if values.get(f.name) is not None:
                    self.seen.setdefault(f.name, {}).setdefault(values[f.name], line)
            if key is not None and key_value is not None:
                self.seen.setdefault(key.name, {}).setdefault(key_value, line)
            if entity.workflow is not None:
                state_field = entity.workflow.field
                if current is None:
                    columns[state_field] = entity.workflow.initial  # whatever the file says
                elif state_field in columns and not bypass_workflow and not _same(
                        current._mapping[state_field], columns[state_field]):
                    reasons.append(workflow.state_change_message(
                        entity, current._mapping[state_field]))
            if reasons:
                self._report_row(line, cells, _dedupe(reasons), headers)
                self._preview(line, "rejected", columns, _dedupe(reasons))
                continue
            if current is None:
                row = {f.column_name: columns.get(f.column_name) for f in entity.fields
                       if not f.is_many}
                row.update(created_at=now, updated_at=now, created_by_id=actor_id,
                           updated_by_id=actor_id)
                inserts.append((row, links))
                pending.append((line, cells, "create"))
                self.result.created += 1
                self._preview(line, "create", columns, [])
                continue
            changed = {c: v for c, v in columns.items()
                       if not _same(current._mapping[c], v)}
            changed_links = {n: ids for n, ids in links.items()
                             if set(ids) != m2m_existing.get((n, current.id), set())}
            if not changed and not changed_links:
                self.result.unchanged += 1
                self._preview(line, "unchanged", columns, [])
                continue
            updates.append((current.id, changed, changed_links))
            pending_updates.append((line, cells, "update"))
            self.result.updated += 1
            self._preview(line, "update", columns, [])
        if not self.dry_run:
            self._write_in_scope(inserts, updates, pending + pending_updates, headers)
        if self.progress is not None:
            self.progress(self.result.total, None)

    def _target_label(self, f: FieldSpec) -> str:
        if f.type == "user":
            return gettext(N_("user"))
        return self.st.spec.entity(f.to).label.get(current_lang())  # type: ignore[arg-type]

    def _preview(self, line: int, action: str, columns: dict[str, Any], reasons: list[str]):
        if len(self.result.preview) < PREVIEW_ROWS:
            self.result.preview.append({"line": line, "action": action, "values": columns,
                                        "reasons": reasons})

    def _write_in_scope(self, inserts: list[Any], updates: list[Any],
                        lines: list[tuple[int, list[Any], str]], headers: list[str]) -> None:
        """Write the chunk; rows the importer could not see afterwards are rejected.

        The record service decides what the user reaches; a row that would land
        outside it (a contact of someone else's customer) is refused with its
        line and reason, and the chunk is written again without it.
        """
        while True:
            outside = self._write(inserts, updates)
            if not outside:
                return
            reason = gettext(N_("You would not be able to see this record after importing "
                                "it: it is outside the records your role reaches."))
            keep_i, keep_u, keep_lines = [], [], []
            for index, item in enumerate([*inserts, *updates]):
                line, cells, action = lines[index]
                if index in outside:
                    self.result.created -= action == "create"
                    self.result.updated -= action == "update"
                    self._report_row(line, cells, [reason], headers)
                    continue
                (keep_i if index < len(inserts) else keep_u).append(item)
                keep_lines.append(lines[index])
            inserts, updates, lines = keep_i, keep_u, keep_lines

    def _outside_scope(self, new_ids: list[int], updates: list[Any]) -> set[int]:
        """Positions (inserts, then updates) of written rows the user would not reach."""
        written = [*new_ids, *(record_id for record_id, _, _ in updates)]
        reached = self.service.reachable_ids(written)
        return {i for i, record_id in enumerate(written) if record_id not in reached}

    def _write(self, inserts: list[tuple[dict[str, Any], dict[str, list[int]]]],
               updates: list[tuple[int, dict[str, Any], dict[str, list[int]]]]) -> set[int]:
        """Write one chunk in one transaction: all of it, or (on any error) none of it.

        Returns the positions (inserts first, then updates) of rows the user would
        not reach after the write; then nothing is written.
        """
        if not inserts and not updates:
            return set()
        tbl, session, entity = self.table, self.session, self.entity
        scoped = self.service.row_clause() is not None
        try:
            links_by_id: list[tuple[int, dict[str, list[int]]]] = []
            new_ids: list[int] = []
            if inserts:
                rows = [r for r, _ in inserts]
                need_ids = scoped or any(links for _, links in inserts)
                dialect = session.get_bind().dialect
                if not need_ids:
                    session.execute(sa.insert(tbl), rows)
                elif getattr(dialect, "insert_executemany_returning_sort_by_parameter_order",
                             False):
                    ids = session.execute(
                        sa.insert(tbl).returning(tbl.c.id, sort_by_parameter_order=True), rows
                    ).scalars().all()
                    links_by_id += [(i, links) for i, (_, links) in zip(ids, inserts,
                                                                       strict=True)]
                    new_ids = list(ids)
                else:
                    for row, links in inserts:
                        result = session.execute(sa.insert(tbl).values(**row))
                        new_id = result.inserted_primary_key[0]
                        links_by_id.append((new_id, links))
                        new_ids.append(new_id)
            now, actor_id = utcnow(), current_actor().user_id
            groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for record_id, changed, links in updates:
                if changed:
                    params = {f"v_{c}": v for c, v in changed.items()}
                    params["_id"] = record_id
                    groups.setdefault(tuple(sorted(changed)), []).append(params)
                if links:
                    links_by_id.append((record_id, links))
            for cols, params in groups.items():
                stmt = (sa.update(tbl).where(tbl.c.id == sa.bindparam("_id"))
                        .values({c: sa.bindparam(f"v_{c}") for c in cols})
                        .values(updated_at=now, updated_by_id=actor_id,
                                version=tbl.c.version + 1))
                session.execute(stmt, params)
            for record_id, links in links_by_id:
                for name, ids in links.items():
                    assoc = self.st.models.m2m_tables[(entity.name, name)]
                    left, right = list(assoc.c)
                    session.execute(sa.delete(assoc).where(left == record_id))
                    if ids:
                        session.execute(sa.insert(assoc),
                                        [{left.name: record_id, right.name: i} for i in ids])
            outside = self._outside_scope(new_ids, updates) if scoped else set()
            if outside:
                session.rollback()
                return outside
            session.commit()
        except Exception:
            session.rollback()
            raise
        return set()


def _same(old: Any, new: Any) -> bool:
    if old is None or new is None:
        return old is None and new is None
    if hasattr(old, "microsecond") and hasattr(new, "microsecond"):
        return old.replace(microsecond=0) == new.replace(microsecond=0)
    if isinstance(old, bool) or isinstance(new, bool):
        return bool(old) == bool(new)
    try:
        return old == new or str(old) == str(new)
    except TypeError:
        return False


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def neutralise(value: Any) -> Any:
    """Return text that Excel would run as a formula with a leading apostrophe."""
    if isinstance(value, str) and value and value[0] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def import_file(entity: str, path: str | Path, dry_run: bool = False,
                encoding: str | None = None, sheet: str | None = None,
                progress: Callable[[int, int | None], None] | None = None) -> ImportResult:
    """Import `path` into `entity` (or only check it, with `dry_run`); return the result."""
    importer = Importer(entity, dry_run=dry_run, progress=progress)
    result = importer.run(path, encoding=encoding, sheet=sheet)
    if not dry_run:
        _audit(entity, path, result)
    return result


def _audit(entity: str, path: str | Path, result: ImportResult) -> None:
    record_event("import", entity=entity, title=Path(path).name,
                 detail={"file": Path(path).name, **result.counts()})
