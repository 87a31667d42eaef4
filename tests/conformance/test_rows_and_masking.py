"""Every way into the data gives the rows and the masking the schema's rules allow.

Generated from the spec: for every role (two accounts each, and Admin) × every
entity the role can read × every way in — list page, show page, edit form,
API list/one/POST/PUT/DELETE, CSV and XLSX export, charts and KPIs, the search
box, sort and filters on sensitive columns, relation pickers, history links and
the import preview — the answer is compared with `oracle.py`, which evaluates
the YAML's conditions over the seeded rows without using `app.records`.

Every mismatch is collected as `role/entity/way: expected … got …`; the final
verdict test fails with all of them, so one run shows every bug.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from typing import Any
from urllib.parse import quote

import openpyxl

from app.records.masking import mask_value
from app.schema.spec import EntitySpec, FieldSpec
from app.state import state
from tests.conformance.conftest import REPORT, World
from tests.conformance.oracle import ADMIN, Account

TEXT_TYPES = ("string", "text", "email", "phone", "url")
SHOW_LINK = r'href="/{entity}/show/(\d+)"'


def key_field(entity: EntitySpec) -> FieldSpec | None:
    """A plain text field that names a record in an export (required ones first)."""
    plain = [f for f in entity.fields
             if f.type in TEXT_TYPES and not f.sensitive and not f.encrypted]
    return next((f for f in plain if f.required), plain[0] if plain else None)


def list_ids(entity: str, body: str) -> list[int]:
    """Record ids of a list page, in page order, once each."""
    seen: list[int] = []
    for pk in re.findall(SHOW_LINK.format(entity=entity), body):
        if int(pk) not in seen:
            seen.append(int(pk))
    return seen


def xlsx_text(data: bytes) -> tuple[str, list[list[str]]]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    rows = [["" if v is None else str(v) for v in row]
            for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)]
    return "\n".join("\t".join(r) for r in rows), rows


class Walk:
    """Walks one account through every way in, recording expectations and mismatches."""

    def __init__(self, world: World):
        self.w = world
        self.spec = world.spec
        self.oracle = world.oracle
        self.tally = REPORT[f"{world.schema}/rows-and-masking"]
        self.rows = world.seeded.rows
        self.routes = {r.rule for r in world.app.url_map.iter_rules()}

    # -- bookkeeping ------------------------------------------------------------

    def check(self, ok: bool, account: Account, entity: str, way: str, expected: Any,
              got: Any) -> bool:
        return self.tally.check(self.w.name, ok, account, entity, way, expected, got)

    def same(self, account: Account, entity: str, way: str, expected: Any, got: Any) -> bool:
        return self.check(expected == got, account, entity, way, expected, got)

    # -- what the schema says ---------------------------------------------------

    def secrets_hidden_from(self, account: Account) -> dict[str, str]:
        """{clear sensitive value: where} that must appear in no answer to `account`."""
        hidden: dict[str, str] = {}
        for e in self.spec.entities:
            sees = self.oracle.sees_sensitive(account, e.name)
            reach = self.oracle.reach(account, e.name)
            for pk, row in self.rows.of(e.name).items():
                for f in e.sensitive_fields:
                    value = row.get(f.name)
                    if value in (None, "") or f.is_relation:
                        continue
                    if not sees or pk not in reach:
                        hidden[str(value)] = f"{e.name}#{pk}.{f.name}"
        return hidden

    def no_leak(self, account: Account, entity: str, way: str, body: str,
                hidden: dict[str, str]) -> None:
        leaked = [where for clear, where in hidden.items() if clear in body]
        self.check(not leaked, account, entity, way, "no clear sensitive value",
                   f"clear values of {leaked[:5]}")

    def shows_as_allowed(self, account: Account, entity: EntitySpec, pk: int, way: str,
                         body: str, fields: list[FieldSpec] | None = None) -> None:
        """The in-scope record's sensitive fields appear masked (or clear for viewers)."""
        sees = self.oracle.sees_sensitive(account, entity.name)
        row = self.rows.of(entity.name)[pk]
        for f in fields if fields is not None else entity.sensitive_fields:
            clear = row.get(f.name)
            if clear in (None, "") or f.is_relation:
                continue
            shown = str(clear) if sees else mask_value(f, clear)
            self.check(shown in body, account, entity.name, f"{way}:{f.name}",
                       f"{'clear' if sees else 'masked'} {shown!r} in the answer", "absent")

    def pick(self, account: Account, entity: str) -> tuple[int | None, int | None]:
        """One record inside the account's scope (its own if reachable) and one outside."""
        reach = self.oracle.reach(account, entity)
        every = set(self.rows.of(entity))
        own = self.w.seeded.owned.get((account.user_id, entity))
        inside = own if own in reach else (min(reach) if reach else None)
        outside = sorted(every - reach)
        return inside, (outside[0] if outside else None)

    # -- the walk -----------------------------------------------------------------

    def account(self, account: Account, full: bool) -> None:
        """Every way in for one account; `full` adds the slower ways (export, charts…)."""
        hidden = self.secrets_hidden_from(account)
        for entity in self.spec.entities:
            acts = self.oracle.actions(account, entity.name)
            if "read" not in acts:
                continue
            inside, outside = self.pick(account, entity.name)
            self.reads(account, entity, inside, outside, hidden, acts)
            self.api_reads(account, entity, inside, outside, hidden)
            if full:
                self.sensitive_queries(account, entity, inside, full)
                if "export" in acts:
                    self.exports(account, entity, hidden)
                if entity.charts:
                    self.charts(account, entity)
                if "create" in acts:
                    self.pickers(account, entity, hidden)
                if "import" in acts and outside is not None:
                    self.import_preview(account, entity, outside, hidden)
                self.history(account, entity, outside)

    def reads(self, account: Account, entity: EntitySpec, inside: int | None,
              outside: int | None, hidden: dict[str, str], acts: frozenset[str]) -> None:
        ui = self.w.ui(account)
        e = entity.name
        view = f"{entity.class_name}View"
        reach = self.oracle.reach(account, e)
        r = ui.get(f"/{e}/list/?psize_{view}=100")
        body = r.get_data(as_text=True)
        self.same(account, e, "ui-list", sorted(reach), sorted(list_ids(e, body)))
        self.no_leak(account, e, "ui-list", body, hidden)
        listed = [self.spec.entity(e).field(n) for n in entity.list if entity.has_field(n)]
        if inside is not None:
            self.shows_as_allowed(account, entity, inside, "ui-list", body,
                                  [f for f in listed if f.sensitive and not f.encrypted])
            r = ui.get(f"/{e}/show/{inside}")
            body = r.get_data(as_text=True)
            self.same(account, e, "ui-show(in)", 200, r.status_code)
            self.no_leak(account, e, "ui-show(in)", body, hidden)
            self.shows_as_allowed(account, entity, inside, "ui-show(in)", body)
            if "update" in acts:
                r = ui.get(f"/{e}/edit/{inside}")
                body = r.get_data(as_text=True)
                self.same(account, e, "ui-edit(in)", 200, r.status_code)
                self.no_leak(account, e, "ui-edit(in)", body, hidden)
                self.shows_as_allowed(account, entity, inside, "ui-edit(in)", body)
        if outside is not None:
            r = ui.get(f"/{e}/show/{outside}")
            self.same(account, e, "ui-show(out)", 404, r.status_code)
            self.no_leak(account, e, "ui-show(out)", r.get_data(as_text=True), hidden)
            if "update" in acts:
                r = ui.get(f"/{e}/edit/{outside}")
                self.same(account, e, "ui-edit(out)", 404, r.status_code)
                self.no_leak(account, e, "ui-edit(out)", r.get_data(as_text=True), hidden)
            if "delete" in acts:
                ui.post(f"/{e}/delete/{outside}")
                self.same(account, e, "ui-delete(out):row kept", True, self.exists(e, outside))

    def api_reads(self, account: Account, entity: EntitySpec, inside: int | None,
                  outside: int | None, hidden: dict[str, str]) -> None:
        e = entity.name
        api, headers = self.w.app.test_client(), self.w.api(account)
        reach = self.oracle.reach(account, e)
        r = api.get(f"/api/v1/{e}/?q=(page_size:100)", headers=headers)
        body = r.get_data(as_text=True)
        got = sorted(r.json.get("ids", [])) if r.status_code == 200 else r.status_code
        self.same(account, e, "api-list", sorted(reach), got)
        self.no_leak(account, e, "api-list", body, hidden)
        if inside is not None:
            r = api.get(f"/api/v1/{e}/{inside}", headers=headers)
            body = r.get_data(as_text=True)
            self.same(account, e, "api-get(in)", 200, r.status_code)
            self.no_leak(account, e, "api-get(in)", body, hidden)
            if r.status_code == 200:
                self.shows_as_allowed(account, entity, inside, "api-get(in)", body)
        if outside is not None:
            r = api.get(f"/api/v1/{e}/{outside}", headers=headers)
            self.same(account, e, "api-get(out)", 404, r.status_code)
            self.no_leak(account, e, "api-get(out)", r.get_data(as_text=True), hidden)
            r = api.put(f"/api/v1/{e}/{outside}", json={}, headers=headers)
            self.check(r.status_code in (403, 404), account, e, "api-put(out)", "403/404",
                       r.status_code)
            r = api.delete(f"/api/v1/{e}/{outside}", headers=headers)
            can_delete = "delete" in self.oracle.actions(account, e)
            if can_delete:
                self.same(account, e, "api-delete(out)", 404, r.status_code)
            else:
                self.check(r.status_code in (401, 403, 404), account, e, "api-delete(out)",
                           "401/403/404", r.status_code)
            self.same(account, e, "api-delete(out):row kept", True, self.exists(e, outside))

    def exists(self, entity: str, pk: int) -> bool:
        with self.w.app.app_context():
            st = state()
            found = st.db.session.get(st.models.model(entity), pk) is not None
            st.db.session.rollback()
            return found

    # -- sensitive columns: search, sort, filter ------------------------------------

    def sensitive_queries(self, account: Account, entity: EntitySpec, inside: int | None,
                          full: bool) -> None:
        e = entity.name
        ui = self.w.ui(account)
        view = f"{entity.class_name}View"
        sees = self.oracle.sees_sensitive(account, e)
        reach = self.oracle.reach(account, e)
        base = f"/{e}/list/?psize_{view}=100"
        default_order: list[int] | None = None
        for f in entity.sensitive_fields:
            if f.is_relation or inside is None:
                continue
            if default_order is None:
                default_order = list_ids(e, ui.get(base).get_data(as_text=True))
            clear = str(self.rows.of(e)[inside].get(f.name) or "")
            if len(clear) < 8:
                continue
            digits = clear[-7:]  # the part a mask hides least: "recover it a digit at a time"
            if f.name in entity.search and entity.is_blind(f.name):
                # sealed (a data subject): whole values only, through the blind index
                whole = list_ids(e, ui.get(f"{base}&q={quote(clear)}").get_data(as_text=True))
                part = list_ids(e, ui.get(f"{base}&q={digits}").get_data(as_text=True))
                self.same(account, e, f"ui-search:{f.name}", sees, inside in whole)
                self.same(account, e, f"ui-search-part:{f.name}", False, inside in part)
                if not sees:
                    self.same(account, e, f"ui-search:{f.name}", [], whole)
            elif f.name in entity.search and not f.encrypted:
                found = list_ids(e, ui.get(f"{base}&q={digits}").get_data(as_text=True))
                if sees:
                    self.same(account, e, f"ui-search:{f.name}", True, inside in found)
                else:
                    self.same(account, e, f"ui-search:{f.name}", [], found)
            if not sees:
                for direction in ("asc", "desc"):
                    order = list_ids(e, ui.get(
                        f"{base}&_oc_{view}={f.name}&_od_{view}={direction}"
                    ).get_data(as_text=True))
                    self.same(account, e, f"ui-sort:{f.name}:{direction}", default_order, order)
                for index, value in ((0, clear[:-3]), (2, digits), (3, clear)):
                    got = list_ids(e, ui.get(f"{base}&_flt_{index}_{f.name}={value}")
                                   .get_data(as_text=True))
                    self.same(account, e, f"ui-filter:{f.name}:{index}", sorted(reach),
                              sorted(got))
                if full:
                    self.api_sensitive(account, e, f, clear, reach)

    def api_sensitive(self, account: Account, e: str, f: FieldSpec, clear: str,
                      reach: set[int]) -> None:
        api, headers = self.w.app.test_client(), self.w.api(account)
        base = "/api/v1/{e}/?q=(page_size:100,{extra})"
        plain = api.get(f"/api/v1/{e}/?q=(page_size:100)", headers=headers).json.get("ids")
        for extra in (f"order_column:{f.name},order_direction:asc",
                      f"order_column:{f.name},order_direction:desc"):
            r = api.get(base.format(e=e, extra=extra), headers=headers)
            got = r.status_code if r.status_code != 200 else r.json.get("ids")
            self.check(got in (400, plain), account, e, f"api-sort:{f.name}",
                       f"400 or {plain}", got)
        for opr, value in (("sw", clear[:-3]), ("ct", clear[-7:]), ("eq", clear)):
            extra = f"filters:!((col:{f.name},opr:{opr},value:'{value}'))"
            r = api.get(base.format(e=e, extra=extra), headers=headers)
            got = r.status_code if r.status_code != 200 else sorted(r.json.get("ids"))
            self.check(got in (400, sorted(reach)), account, e, f"api-filter:{f.name}:{opr}",
                       f"400 or {sorted(reach)}", got)

    # -- exports, charts, pickers, history, import ------------------------------------

    def expected_keys(self, account: Account, entity: EntitySpec, kf: FieldSpec) -> list[str]:
        reach = self.oracle.reach(account, entity.name)
        return sorted(str(self.rows.of(entity.name)[pk].get(kf.name) or "") for pk in reach)

    def exports(self, account: Account, entity: EntitySpec, hidden: dict[str, str]) -> None:
        e = entity.name
        ui = self.w.ui(account)
        kf = key_field(entity)
        column = [f.name for f in entity.fields].index(kf.name) if kf else None
        for fmt in ("csv", "xlsx"):
            r = ui.get(f"/{e}/export?format={fmt}")
            if not self.same(account, e, f"export-{fmt}", 200, r.status_code):
                continue
            if fmt == "csv":
                text = r.get_data(as_text=True).lstrip("\ufeff")
                table = list(csv.reader(io.StringIO(text)))
            else:
                text, table = xlsx_text(r.get_data())
            self.no_leak(account, e, f"export-{fmt}", text, hidden)
            body = table[1:]
            if column is not None:
                got = sorted(row[column].lstrip("'") if len(row) > column else "" for row in body)
                self.same(account, e, f"export-{fmt}:rows", self.expected_keys(account, entity, kf),
                          got)
            else:
                self.same(account, e, f"export-{fmt}:count",
                          len(self.oracle.reach(account, e)), len(body))
        # the export follows the list's search box: a masked field's digits find nothing
        if not self.oracle.sees_sensitive(account, e):
            inside, _ = self.pick(account, e)
            for f in entity.sensitive_fields:
                clear = str(self.rows.of(e).get(inside, {}).get(f.name) or "")
                if inside is None or len(clear) < 8 or f.name not in entity.search:
                    continue
                text = ui.get(f"/{e}/export?format=csv&q={clear[-7:]}").get_data(as_text=True)
                self.same(account, e, f"export-csv-search:{f.name}", 1,
                          len(list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))))

    def charts(self, account: Account, entity: EntitySpec) -> None:
        e = entity.name
        ui = self.w.ui(account)
        reach = self.oracle.reach(account, e)
        sees = self.oracle.sees_sensitive(account, e)
        for chart in entity.charts:
            hidden_fields = [n for n in (chart.group_by, chart.measure.field) if n
                             and entity.has_field(n) and (
                                 entity.field(n).encrypted or entity.field(n).is_many
                                 or (entity.field(n).sensitive and not sees))]
            r = ui.get(f"/{e}/charts/data/{chart.name}")
            way = f"chart:{chart.name}"
            if hidden_fields:
                self.check(r.status_code in (403, 404), account, e, way, "refused",
                           r.status_code)
                continue
            if not self.same(account, e, way, 200, r.status_code):
                continue
            values = [v or 0 for v in r.json["values"]]
            rows = [self.rows.of(e)[pk] for pk in reach]
            if r.json.get("time_series"):
                rows = [row for row in rows if row.get(chart.group_by) is not None]
            if chart.measure.func == "count" or chart.measure.field is None:
                self.same(account, e, f"{way}:count", len(rows), round(sum(values)))
            elif chart.measure.func == "sum":
                expected = sum(float(row.get(chart.measure.field) or 0) for row in rows)
                self.check(abs(expected - sum(values)) < 0.01, account, e, f"{way}:sum",
                           expected, sum(values))

    def pickers(self, account: Account, entity: EntitySpec, hidden: dict[str, str]) -> None:
        e = entity.name
        ui = self.w.ui(account)
        r = ui.get(f"/{e}/add")
        if not self.same(account, e, "ui-add", 200, r.status_code):
            return
        body = r.get_data(as_text=True)
        self.no_leak(account, e, "ui-add", body, hidden)
        for f in entity.fields:
            if not f.is_relation or f.readonly:
                continue
            expected = sorted(self.oracle.picker_reach(account, f.to))  # type: ignore[arg-type]
            match = re.search(rf'<select[^>]*\bname="{f.name}"[^>]*>(.*?)</select>', body, re.S)
            got = sorted(int(v) for v in re.findall(r'<option[^>]*value="(\d+)"',
                                                    match.group(1))) if match else "no select"
            self.same(account, e, f"picker:{f.name}", expected, got)
            route = f"/{e}/api/column/add/<col_name>"
            if route in self.routes:
                r = ui.get(f"/{e}/api/column/add/{f.name}")
                ids = sorted(int(x["id"]) for x in (r.json or {}).get("result", [])) \
                    if r.status_code == 200 else r.status_code
                self.same(account, e, f"picker-api:{f.name}", expected, ids)

    def history(self, account: Account, entity: EntitySpec, outside: int | None) -> None:
        if outside is None:
            return
        e = entity.name
        r = self.w.ui(account).get(f"/audit/list/?_flt_3_entity={e}&_flt_3_record_id={outside}")
        reads_audit = ADMIN in account.roles or any(
            "read" in self.spec.role(n).grants.get("audit_log", ())
            for n in account.roles)
        location = r.headers.get("Location", "")
        refused = r.status_code in (401, 403, 404) or "/login" in location
        if not reads_audit:
            self.same(account, e, "history(out)", "refused", "refused" if refused
                      else f"{r.status_code} {location}")
        else:  # an audit reader with a row rule would see another scope's history
            body = r.get_data(as_text=True)
            kf = key_field(entity)
            title = str(self.rows.of(e)[outside].get(kf.name)) if kf else None
            self.check(refused or not title or title not in body, account, e, "history(out)",
                       "no entry of a record outside the scope", f"{title!r} listed")

    def import_preview(self, account: Account, entity: EntitySpec, outside: int,
                       hidden: dict[str, str]) -> None:
        """A file naming an out-of-scope record (by import key, by relation id) shows
        none of that record's values in the preview or the error report."""
        e = entity.name
        row = self.rows.of(e)[outside]
        header: list[str] = []
        cells: list[str] = []
        secret: dict[str, str] = dict(hidden)
        if entity.import_key:
            header.append(entity.import_key)
            cells.append(str(row.get(entity.import_key)))
        for f in entity.fields:
            if f.is_foreign_key and f.type != "user" and f.to:
                outside_targets = sorted(set(self.rows.of(f.to))
                                         - self.oracle.picker_reach(account, f.to))
                if outside_targets:
                    header.append(f.name)
                    cells.append(str(outside_targets[0]))
                    target = self.spec.entity(f.to)
                    kf = key_field(target)
                    if kf and target.title == kf.name:
                        value = self.rows.of(f.to)[outside_targets[0]].get(kf.name)
                        secret[str(value)] = f"{f.to}#{outside_targets[0]}.{kf.name}"
        kf = key_field(entity)
        if kf and kf.name != entity.import_key and row.get(kf.name):
            secret[str(row[kf.name])] = f"{e}#{outside}.{kf.name}"
        if not header:
            return
        for typed in cells:  # what the user typed is theirs to see again
            secret.pop(typed, None)
        buffer = io.StringIO()
        csv.writer(buffer).writerows([header, cells])
        ui = self.w.ui(account)
        r = ui.post(f"/{e}/import", data={"file": (io.BytesIO(buffer.getvalue().encode()),
                                                   f"probe-{uuid.uuid4().hex[:6]}.csv")},
                    content_type="multipart/form-data")
        if not self.same(account, e, "import-preview", 200, r.status_code):
            return
        body = r.get_data(as_text=True)
        self.no_leak(account, e, "import-preview", body, secret)
        report = re.search(r'href="([^"]*/import/report/[^"]+)"', body)
        if report:
            text = ui.get(report.group(1).replace("&amp;", "&")).get_data(as_text=True)
            self.no_leak(account, e, "import-report", text, secret)

    # -- writes: what the API answers after POST and PUT --------------------------------

    def writes(self, account: Account) -> None:
        for entity in self.spec.entities:
            acts = self.oracle.actions(account, entity.name)
            if "read" not in acts:
                continue
            if "create" in acts:
                self.api_post(account, entity)
            inside, _ = self.pick(account, entity.name)
            if "update" in acts and inside is not None:
                self.api_put(account, entity, inside)

    def api_post(self, account: Account, entity: EntitySpec) -> None:
        """Create a record in the account's own scope with new sensitive values."""
        e = entity.name
        own = self.w.seeded.owned.get((account.user_id, e))
        template = self.rows.of(e).get(own or -1, {})
        body: dict[str, Any] = {}
        fresh: dict[str, str] = {}
        n = uuid.uuid4().int
        for f in entity.fields:
            if f.readonly or f.type == "user" or f.encrypted and not f.sensitive:
                continue
            if f.is_many:
                continue
            if f.is_relation:
                if template.get(f.name) is not None and f.to != e:
                    body[f.name] = template[f.name]
                continue
            if f.sensitive:
                value = f"139{n % 10**8:08d}" if f.type == "phone" else f"SEC{n % 10**14:014d}"
                body[f.name] = fresh[f.name] = value[: f.length or 30]
            elif f.required or f.unique:
                value = template.get(f.name)
                if f.unique and f.type in TEXT_TYPES:
                    value = f"p{n % 10**9}"[: f.length or 20]
                if value is None:
                    continue
                body[f.name] = value.isoformat() if hasattr(value, "isoformat") else (
                    str(value) if not isinstance(value, bool | int | str) else value)
        r = self.w.app.test_client().post(f"/api/v1/{e}/", json=body,
                                          headers=self.w.api(account))
        if not self.same(account, e, "api-post", 201, f"{r.status_code} {r.json}"
                         if r.status_code != 201 else 201):
            return
        text = r.get_data(as_text=True)
        sees = self.oracle.sees_sensitive(account, e)
        for name, clear in fresh.items():
            self.same(account, e, f"api-post:{name}", "clear" if sees else "masked",
                      "clear" if clear in text else "masked")
        self.no_leak(account, e, "api-post", text, self.secrets_hidden_from(account))
        self.delete_row(e, r.json["id"])

    def api_put(self, account: Account, entity: EntitySpec, inside: int) -> None:
        """Write the stored values back unchanged: the answer still masks them."""
        e = entity.name
        row = self.rows.of(e)[inside]
        body = {f.name: row[f.name] for f in entity.sensitive_fields
                if not f.is_relation and row.get(f.name) not in (None, "")
                and self.oracle.sees_sensitive(account, e)}
        r = self.w.app.test_client().put(f"/api/v1/{e}/{inside}", json=body,
                                         headers=self.w.api(account))
        if not self.same(account, e, "api-put(in)", 200, r.status_code if r.status_code != 200
                         else 200):
            return
        text = r.get_data(as_text=True)
        self.no_leak(account, e, "api-put(in)", text, self.secrets_hidden_from(account))
        self.shows_as_allowed(account, entity, inside, "api-put(in)", text)

    def delete_row(self, entity: str, pk: int) -> None:
        with self.w.app.app_context():
            st = state()
            obj = st.db.session.get(st.models.model(entity), pk)
            if obj is not None:
                st.db.session.delete(obj)
                st.db.session.commit()


def test_every_way_in_gives_the_rows_and_masks_the_schema_allows(world: World,
                                                                 request: Any) -> None:
    walk = Walk(world)
    first_of_role: set[str] = set()
    for account in world.accounts:
        full = account.roles[0] not in first_of_role
        first_of_role.add(account.roles[0])
        walk.account(account, full)
    for account in world.accounts:  # writes last: the reads above saw the seeded rows only
        walk.writes(account)
    walk.tally.finish(world.name, "assertions so far", request)

