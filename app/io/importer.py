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
from app.io import bulk
from app.io.reader import FileError, TooLong, open_table
from app.models import column_default, utcnow
from app.notify.webhooks import note_bulk
from app.privacy import lookup
from app.privacy.keys import SealedStr, is_token, record_key
from app.records import records, workflow
from app.records.display import app_zone
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
    # headers of rollup/classified fields: kept by the rules, never imported
    computed_columns: list[str] = field(default_factory=list)
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


def computed_headers(entity: EntitySpec, headers: list[str]) -> list[str]:
    """The headers that name a rollup or classified field (an exported file has them)."""
    names = {normalise_header(alias) for f in entity.fields if f.computed
             for alias in (f.name, f.label.en, f.label.zh) if alias}
    return [h for h in headers if normalise_header(h) in names]


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
        # what every row reads, worked out once (properties of FieldSpec are not free)
        self.column_of = {f.name: f.column_name for f in self.entity.fields}
        self.row_columns = [f.column_name for f in self.entity.fields if not f.is_many]
        self.new_record_fields = [_Column(f, f.column_name, column_default(f))
                                  for f in self.entity.fields if not f.is_many and not f.readonly]
        self.bulk_audit = True  # False: the per-row reference path (tests compare the two)

    # -- the pieces --------------------------------------------------------

    def _key_field(self, mapped: list[FieldSpec]) -> FieldSpec | None:
        names = {f.name for f in mapped}
        if self.entity.import_key and self.entity.import_key in names:
            return self.entity.field(self.entity.import_key)
        for f in mapped:
            if f.unique and self._comparable(f) and not f.is_relation:
                return f
        return None

    def _comparable(self, f: FieldSpec) -> bool:
        """Whether the importer can look `f` up: in clear, or by its blind index."""
        return not f.encrypted or self.entity.is_blind(f.name)

    def _form(self, f: FieldSpec, value: Any) -> Any:
        """The form `value` of `f` is compared in (a sealed field: normalised, like its index)."""
        if value is not None and self.entity.is_blind(f.name):
            return lookup.normalise(f, value)
        return value

    def _sealed_update(self, record_id: Any, changed: dict[str, Any]) -> dict[str, Any]:
        """`changed` with its sealed values under the record's key and their blind indexes."""
        names = [f.name for f in self.entity.sealed_fields if f.name in changed]
        if not names:
            return changed
        out = dict(changed)
        out.update(lookup.index_values(self.entity, {n: changed[n] for n in names}))
        key_id = record_key(self.session.connection(), self.entity.name, record_id)
        for n in names:
            if out[n] not in (None, "") and not is_token(out[n]):
                out[n] = SealedStr(str(out[n]), key_id)
        return out

    def _where_in(self, f: FieldSpec, values: list[Any]) -> Any:
        if self.entity.is_blind(f.name):
            return lookup.equals(self.table, self.entity, f, values)
        return self.table.c[f.name].in_(values)

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
        computed = computed_headers(self.entity, unknown)
        self.result.unknown_columns = [h for h in unknown if h not in computed]
        self.result.computed_columns = computed
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
        """Parse, look up, decide and write one chunk (one transaction)."""
        parsed, rel_texts = self._parse(rows, mapping)
        resolved = {name: self._resolve(self.fields_by_name[name], texts)
                    for name, texts in rel_texts.items()}
        look = self._lookups(parsed, mapping, key)
        look.resolved = resolved
        plan = _Plan()
        for item in parsed:
            self._decide(item, look, plan, headers)
        if not self.dry_run:
            self._write_in_scope(plan.inserts, plan.updates, plan.pending + plan.pending_updates,
                                 headers)
        if self.progress is not None:
            self.progress(self.result.total, None)

    # parsing: the same `values.py` functions as the forms, per cell, no ORM objects

    def _parse(self, rows: list[tuple[int, list[Any]]], mapping: dict[int, FieldSpec]
               ) -> tuple[list[_Parsed], dict[str, set[str]]]:
        parsed: list[_Parsed] = []
        rel_texts: dict[str, set[str]] = {}
        lang, zone = current_lang(), app_zone()  # typed in the app's zone
        columns = list(mapping.items())
        for line, cells in rows:
            item = _Parsed(line, cells)
            width = len(cells)
            for index, f in columns:
                _parse_cell(item, f, cells[index] if index < width else None, lang, rel_texts,
                            zone)
            parsed.append(item)
        return parsed, rel_texts

    # lookups: one SELECT ... WHERE key IN (...) per chunk and purpose

    def _lookups(self, parsed: list[_Parsed], mapping: dict[int, FieldSpec],
                 key: FieldSpec | None) -> _Lookups:
        tbl = self.table
        look = _Lookups(key=key, mapping=mapping)
        look.mapped_columns = [_Column(f, f.column_name, column_default(f))
                               for f in mapping.values() if not f.is_many and not f.readonly]
        look.unique_fields = [f for f in mapping.values()
                              if f.unique and self._comparable(f) and not f.is_relation]
        if key is not None:
            keys = {p.values.get(key.name) for p in parsed} - {None}
            for part in _chunks(list(keys), 500):
                for row in self.session.execute(sa.select(tbl).where(self._where_in(key, part))):
                    look.existing[self._form(key, row._mapping[key.name])] = row
        if look.existing and self.service.row_clause() is not None:
            look.visible = self.service.reachable_ids([r.id for r in look.existing.values()])
        for f in look.unique_fields:
            if key is not None and f.name == key.name:
                continue
            vals = {p.values.get(f.name) for p in parsed} - {None}
            look.taken[f.name] = {}
            for part in _chunks(list(vals), 500):
                for row in self.session.execute(
                    sa.select(tbl.c.id, tbl.c[f.name]).where(self._where_in(f, part))
                ):
                    look.taken[f.name][self._form(f, row[1])] = row.id
        self._existing_links(look)
        look.defaults = self.service.new_record_defaults()
        look.bypass_workflow = workflow.bypasses(self.service)
        look.actor_id = current_actor().user_id
        look.now = utcnow()
        return look

    def _existing_links(self, look: _Lookups) -> None:
        many_fields = [f for f in look.mapping.values() if f.is_many]
        if not many_fields or not look.existing:
            return
        ids = [r.id for r in look.existing.values()]
        for f in many_fields:
            assoc = self.st.models.m2m_tables[(self.entity.name, f.name)]
            left, right = list(assoc.c)
            for part in _chunks(ids, 500):
                for row in self.session.execute(sa.select(left, right).where(left.in_(part))):
                    look.m2m_existing.setdefault((f.name, row[0]), set()).add(row[1])

    # deciding: create, update, unchanged or rejected, with the reasons

    def _decide(self, item: _Parsed, look: _Lookups, plan: _Plan, headers: list[str]) -> None:
        self.result.total += 1
        lang = current_lang()
        columns = self._relation_columns(item, look, lang)
        for name, value in item.values.items():
            f = self.fields_by_name[name]
            columns[self.column_of[name]] = value
            if value is not None:
                item.reasons += [f"{f.label.get(lang)}: {r}" for r in check_value(f, value)]
        links = self._links(item, look, lang)
        current = self._key_checks(item, look, lang)
        self._unique_checks(item, look, current, lang)
        self._defaults_and_required(item, look, current, columns, lang)
        self._remember(item, look)
        self._workflow_check(item, look, current, columns)
        if item.reasons:
            reasons = _dedupe(item.reasons)
            self._report_row(item.line, item.cells, reasons, headers)
            self._preview(item.line, "rejected", columns, reasons)
        elif current is None:
            self._plan_insert(item, look, plan, columns, links)
        else:
            self._plan_update(item, look, plan, current, columns, links)

    def _relation_columns(self, item: _Parsed, look: _Lookups, lang: str) -> dict[str, Any]:
        columns: dict[str, Any] = {}
        for name, text in item.relations.items():
            f = self.fields_by_name[name]
            hit = look.resolved[name].get(text)
            if hit is None:
                item.reasons.append(f"{f.label.get(lang)}: " + gettext(
                    N_("No %(target)s named '%(value)s'."),
                    target=self._target_label(f), value=text))
            elif isinstance(hit, list):
                item.reasons.append(f"{f.label.get(lang)}: " + gettext(
                    N_("Several %(target)s are named '%(value)s'; use the ID."),
                    target=self._target_label(f), value=text))
            else:
                columns[f.column_name] = hit
        return columns

    def _links(self, item: _Parsed, look: _Lookups, lang: str) -> dict[str, list[int]]:
        links: dict[str, list[int]] = {}
        for name, texts in item.many.items():
            f = self.fields_by_name[name]
            ids: list[int] = []
            for text in texts:
                hit = look.resolved[name].get(text)
                if hit is None or isinstance(hit, list):
                    item.reasons.append(f"{f.label.get(lang)}: " + gettext(
                        N_("No %(target)s named '%(value)s'."),
                        target=self._target_label(f), value=text))
                elif hit not in ids:
                    ids.append(hit)
            links[name] = ids
        return links

    def _key_checks(self, item: _Parsed, look: _Lookups, lang: str) -> Any:
        """The existing record the row's key names (or None), with the key's reasons."""
        key = look.key
        key_value = item.values.get(key.name) if key is not None else None
        if key is None or key_value is None:
            return None
        first = self.seen.setdefault(key.name, {}).get(self._form(key, key_value))
        if first is not None:
            item.reasons.append(gettext(
                N_("%(field)s '%(value)s' is also on line %(line)s of this file."),
                field=key.label.get(lang), value=key_value, line=first))
        current = look.existing.get(self._form(key, key_value))
        if current is not None and look.visible is not None and current.id not in look.visible:
            item.reasons.append(gettext(N_("You may not change this existing record.")))
        return current

    def _unique_checks(self, item: _Parsed, look: _Lookups, current: Any, lang: str) -> None:
        key = look.key
        for f in look.unique_fields:
            value = item.values.get(f.name)
            if value is None or (key is not None and f.name == key.name):
                continue
            first = self.seen.setdefault(f.name, {}).get(self._form(f, value))
            if first is not None:
                item.reasons.append(gettext(
                    N_("%(field)s '%(value)s' is also on line %(line)s of this file."),
                    field=f.label.get(lang), value=value, line=first))
            other = look.taken.get(f.name, {}).get(self._form(f, value))
            if other is not None and (current is None or other != current.id):
                item.reasons.append(gettext(
                    N_("Another %(entity)s already has this %(field)s."),
                    entity=self.entity.label.get(lang), field=f.label.get(lang)))

    def _defaults_and_required(self, item: _Parsed, look: _Lookups, current: Any,
                               columns: dict[str, Any], lang: str) -> None:
        # a cell that could not be read already has its reason: not "required" too
        unreadable = {f.name for f in look.mapping.values()
                      if not f.is_relation and f.type != "user" and f.name not in item.values}
        if current is None:
            for column, value in look.defaults.items():
                if columns.get(column) is None:
                    columns[column] = value
        # a blank cell means what it means on a new record: the default
        fields = self.new_record_fields if current is None else look.mapped_columns
        for c in fields:
            if c.name in item.relations or c.name in unreadable:
                continue
            if columns.get(c.column) is None:
                if c.default is not None:
                    columns[c.column] = c.default() if callable(c.default) else c.default
                if c.required and columns.get(c.column) is None:
                    item.reasons.append(f"{c.field.label.get(lang)}: " + gettext(
                        N_("This field is required.")))

    def _remember(self, item: _Parsed, look: _Lookups) -> None:
        for f in look.unique_fields:
            if item.values.get(f.name) is not None:
                seen = self.seen.setdefault(f.name, {})
                seen.setdefault(self._form(f, item.values[f.name]), item.line)
        key = look.key
        if key is not None and item.values.get(key.name) is not None:
            seen = self.seen.setdefault(key.name, {})
            seen.setdefault(self._form(key, item.values[key.name]), item.line)

    def _workflow_check(self, item: _Parsed, look: _Lookups, current: Any,
                        columns: dict[str, Any]) -> None:
        flow = self.entity.workflow
        if flow is None:
            return
        if current is None:
            columns[flow.field] = flow.initial  # whatever the file says
        elif flow.field in columns and not look.bypass_workflow and not _same(
                current._mapping[flow.field], columns[flow.field]):
            item.reasons.append(workflow.state_change_message(
                self.entity, current._mapping[flow.field]))

    def _plan_insert(self, item: _Parsed, look: _Lookups, plan: _Plan,
                     columns: dict[str, Any], links: dict[str, list[int]]) -> None:
        row = {column: columns.get(column) for column in self.row_columns}
        row.update(created_at=look.now, updated_at=look.now, created_by_id=look.actor_id,
                   updated_by_id=look.actor_id)
        plan.inserts.append((row, links))
        plan.pending.append((item.line, item.cells, "create"))
        self.result.created += 1
        self._preview(item.line, "create", columns, [])

    def _plan_update(self, item: _Parsed, look: _Lookups, plan: _Plan, current: Any,
                     columns: dict[str, Any], links: dict[str, list[int]]) -> None:
        changed = {c: v for c, v in columns.items() if not _same(current._mapping[c], v)}
        changed_links = {n: ids for n, ids in links.items()
                         if set(ids) != look.m2m_existing.get((n, current.id), set())}
        if not changed and not changed_links:
            self.result.unchanged += 1  # no write, no audit entry
            self._preview(item.line, "unchanged", columns, [])
            return
        plan.updates.append((current.id, changed, changed_links))
        plan.pending_updates.append((item.line, item.cells, "update"))
        self.result.updated += 1
        self._preview(item.line, "update", columns, [])

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

    def _insert(self, inserts: list[tuple[dict[str, Any], dict[str, list[int]]]],
                links_by_id: list[tuple[int, dict[str, list[int]]]]) -> list[int]:
        """Insert the chunk's new rows; return their ids.

        `bulk_audit` (the default): rows, keys, links and audit entries in a few
        statements (app.io.bulk). Without it the rows go through the capture's
        per-statement hook, the reference path the bulk entries are tested against.
        """
        rows = [r for r, _ in inserts]
        if self.bulk_audit:
            m2m = {name: self.st.models.m2m_tables[(self.entity.name, name)]
                   for name in {n for _, links in inserts for n in links}}
            return bulk.insert_chunk(self.session, self.entity, self.table, m2m, rows,
                                     [links for _, links in inserts])
        tbl = self.table
        ids = []
        for row, links in inserts:
            new_id = self.session.execute(sa.insert(tbl), row).inserted_primary_key[0]
            links_by_id.append((new_id, links))
            ids.append(new_id)
        return ids

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
                new_ids = self._insert(inserts, links_by_id)
            now, actor_id = utcnow(), current_actor().user_id
            groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for record_id, changed, links in updates:
                if changed:
                    changed = self._sealed_update(record_id, changed)
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
            for record_id, links in links_by_id:  # updated rows' links (new rows: bulk)
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
            note_bulk(session, entity.name, "create", new_ids)
            note_bulk(session, entity.name, "update",
                      [record_id for record_id, changed, links in updates if changed or links])
            session.commit()
        except Exception:
            session.rollback()
            raise
        return set()


@dataclass
class _Parsed:
    """One file row, parsed: typed values, relation texts, many texts, reasons."""

    line: int
    cells: list[Any]
    values: dict[str, Any] = field(default_factory=dict)
    relations: dict[str, str] = field(default_factory=dict)
    many: dict[str, list[str]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Column:
    """A field as a row's defaults and required check read it."""

    field: FieldSpec
    column: str
    default: Any

    @property
    def name(self) -> str:
        return self.field.name

    @property
    def required(self) -> bool:
        return self.field.required


@dataclass
class _Lookups:
    """What one chunk looked up at once: existing records, taken values, links, defaults."""

    key: FieldSpec | None
    mapping: dict[int, FieldSpec]
    mapped_columns: list[_Column] = field(default_factory=list)
    existing: dict[Any, Any] = field(default_factory=dict)
    visible: set[int] | None = None
    unique_fields: list[FieldSpec] = field(default_factory=list)
    taken: dict[str, dict[Any, int]] = field(default_factory=dict)
    m2m_existing: dict[tuple[str, int], set[int]] = field(default_factory=dict)
    resolved: dict[str, dict[str, Any]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    bypass_workflow: bool = False
    actor_id: Any = None
    now: Any = None


@dataclass
class _Plan:
    """The writes one chunk will make, with the file lines they came from."""

    inserts: list[tuple[dict[str, Any], dict[str, list[int]]]] = field(default_factory=list)
    updates: list[tuple[int, dict[str, Any], dict[str, list[int]]]] = field(default_factory=list)
    pending: list[tuple[int, list[Any], str]] = field(default_factory=list)
    pending_updates: list[tuple[int, list[Any], str]] = field(default_factory=list)


def _parse_cell(item: _Parsed, f: FieldSpec, raw: Any, lang: str,
                rel_texts: dict[str, set[str]], zone: Any) -> None:
    """Read one cell into `item` like the form would (relations: their text, for later)."""
    if isinstance(raw, TooLong):
        item.reasons.append(f"{f.label.get(lang)}: {raw.reason()}")
    elif f.is_many:
        item.many[f.name] = split_many(raw)
        rel_texts.setdefault(f.name, set()).update(item.many[f.name])
    elif f.is_foreign_key:
        if not is_blank(raw):
            item.relations[f.name] = cell_text(raw)
            rel_texts.setdefault(f.name, set()).add(item.relations[f.name])
        else:
            item.values[f.name] = None
    else:
        try:
            item.values[f.name] = parse_cell(raw, f, zone)
        except CellError as exc:
            item.reasons.append(f"{f.label.get(lang)}: {gettext(exc.message, **exc.params)}")


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
