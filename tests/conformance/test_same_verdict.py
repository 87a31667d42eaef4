"""Same values, same verdict: the form, the API and the importer agree on every value.

Generated from the spec: for every field type the schema uses (one field per
distinct set of options), good and bad values as people type them are sent, as
Admin, to the add form (POST /E/add), the API (POST /api/v1/E/ with a JWT) and
the importer (a CSV, dry run). Each way must accept or refuse the same values,
say the same thing when it refuses (the importer's "Label: " prefix stripped),
and store the same value when it accepts. The enum select cannot submit a value
that is not one of its options, so enums compare the API and the importer only.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import re
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from app.context import Actor, acting_as
from app.schema.spec import EntitySpec, FieldSpec
from app.state import state
from tests.conformance.conftest import REPORT, World
from tests.conftest import ADMIN_PASSWORD

PREVIEW_ROWS = 20  # the importer previews this many rows: one file per batch


def values_for(f: FieldSpec) -> list[str]:
    """Good and bad values of a field, as a person would type them."""
    length = f.max_length or f.length
    if f.type in ("string", "text"):
        out = ["Good value 好"]
        if length:
            out.append("x" * (length + 1))
        return out
    if f.type == "email":
        return ["a.b@example.com", "a..b@example.com", "no-at-sign"]
    if f.type == "url":
        return ["https://example.com/a", "http://-x-.com", "example"]
    if f.type == "phone":
        return ["13912345678", "+86 139-1234-5678", "12", "abc12345678"]
    if f.type == "integer":
        low = int(f.min) if f.min is not None else 1
        out = [str(low), "abc", "1.5", "1,000" if f.max is None or f.max >= 1000 else str(low)]
        if f.min is not None:
            out.append(str(low - 1))
        if f.max is not None:
            out.append(str(int(f.max) + 1))
        return out
    if f.type == "decimal":
        out = ["12.5", "1.234", "abc", "1,234.50", "9" * (f.precision - f.scale + 1)]
        if f.min is not None:
            out.append(str(Decimal(f.min) - 1))
        if f.max is not None:
            out.append(str(Decimal(f.max) + 1))
        return out
    if f.type == "enum":
        return [f.choices[0].key, f.choices[-1].label.en, "nope"]
    if f.type == "date":
        return ["2026-11-23", "2026/11/23", "2026-13-45", "2026-11-23 10:30"]
    if f.type == "datetime":
        return ["2026-11-23 10:30:00", "2026-11-23 10:30", "2026/11/23 10:30", "2026-11-23",
                "garbage"]
    if f.type == "boolean":
        return ["是", "否", "true", "false"]
    return []


def signature(f: FieldSpec) -> tuple[Any, ...]:
    return (f.type, f.max_length or f.length, f.min, f.max, f.scale, f.precision, f.pattern,
            f.required, tuple(c.key for c in f.choices))


def text_lines(fragment: str) -> list[str]:
    """The messages of an HTML fragment, one per line, tags removed."""
    text = html.unescape(re.sub(r"<[^>]+>", "", fragment))
    return [line.strip() for line in text.splitlines() if line.strip()]


def flashes(page: str) -> list[str]:
    """The flashed messages of a page (a form that redirected without saving)."""
    found = re.findall(r'class="alert[^"]*"[^>]*>(.*?)</div>',
                       page, re.S)
    return [line for m in found for line in text_lines(re.sub(r"<button.*?</button>", "", m,
                                                              flags=re.S))]


class Verdict:
    def __init__(self, accepted: bool, messages: list[str], value: Any = None):
        self.accepted = accepted
        self.messages = sorted(m.strip() for m in messages if m.strip())
        self.value = value

    def __repr__(self) -> str:
        if self.accepted:
            return f"accepted({self.value!r})"
        return f"refused({'; '.join(self.messages)})"


def stored(value: Any) -> Any:
    """A stored value in one comparable form."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


# How each way reads a date-time typed without an offset (docs/import-export.md, 时区):
# a person at a form or in a spreadsheet means the app's time zone; the API means UTC.
READS_NAIVE_IN_APP_ZONE = {"form": True, "import": True, "api": False}


def as_read(value: Any, f: FieldSpec, way: str, world: World) -> Any:
    """A stored value as the wall-clock time the way read from the typed text.

    Date-times are stored as UTC instants; converting each back to the zone its
    way reads naive text in compares the instants each way meant, so a form
    that took `10:30` as 10:30 Asia/Shanghai and an API that took it as 10:30
    UTC agree, and a way that shifted the time twice (or not at all) does not.
    """
    if f.type != "datetime" or value is None:
        return value
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(world.spec.timezone) if READS_NAIVE_IN_APP_ZONE[way] else dt.UTC
    instant = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    return instant.astimezone(zone).replace(tzinfo=None).isoformat(sep=" ")


class Sender:
    """Submits one field value, with a valid rest of the record, three ways."""

    def __init__(self, world: World):
        self.w = world
        self.app = world.app
        self.spec = world.spec
        self.lang = self.spec.default_locale
        self.headers = {"Accept-Language": self.lang}
        self.ui = self.app.test_client()
        self.ui.post("/login/", data={"username": "admin", "password": ADMIN_PASSWORD})
        self.ui.get(f"/lang/{self.lang}")
        token = self.app.test_client().post("/api/v1/security/login", json={
            "username": "admin", "password": ADMIN_PASSWORD, "provider": "db"}).json
        self.api_headers = {**self.headers, "Authorization": f"Bearer {token['access_token']}"}
        with self.app.app_context():
            self.admin_id = self.app.appbuilder.sm.find_user(username="admin").id

    # -- the rest of a valid record ------------------------------------------------

    def base(self, entity: EntitySpec) -> dict[str, str]:
        """Typed values of the required fields (unique ones fresh), relations as ids."""
        token = uuid.uuid4().hex[:8]
        out: dict[str, str] = {}
        for f in entity.fields:
            if not f.required or f.readonly or f.type == "user":
                continue
            if f.is_relation:
                ids = sorted(self.w.seeded.rows.of(f.to))  # type: ignore[arg-type]
                out[f.name] = str(ids[0])
            elif f.type == "enum":
                out[f.name] = f.choices[0].key
            elif f.type == "integer":
                out[f.name] = str(int(f.min) if f.min is not None else 1)
            elif f.type == "decimal":
                out[f.name] = "1"
            elif f.type == "date":
                out[f.name] = "2025-01-02"
            elif f.type == "datetime":
                out[f.name] = "2025-01-02 03:04:05"
            elif f.type == "boolean":
                out[f.name] = "true"
            elif f.type == "email":
                out[f.name] = f"b{token}@example.com"
            elif f.type == "phone":
                out[f.name] = f"138{int(token, 16) % 10**8:08d}"
            elif f.type == "url":
                out[f.name] = f"https://{token}.example.com"
            else:
                out[f.name] = f"B{token}"[: f.max_length or f.length or 20]
        return out

    # -- the three ways ---------------------------------------------------------------

    def max_id(self, entity: str) -> int:
        with self.app.app_context():
            import sqlalchemy as sa

            table = state().models.table(entity)
            value = state().db.session.execute(sa.select(sa.func.max(table.c.id))).scalar()
            state().db.session.rollback()
            return value or 0

    def take(self, entity: str, pk: int, name: str) -> Any:
        """Read the stored value of a created record, then delete it (same value, next way)."""
        with self.app.app_context():
            st = state()
            obj = st.db.session.get(st.models.model(entity), pk)
            value = stored(getattr(obj, name))
            st.db.session.delete(obj)
            st.db.session.commit()
            return value

    def form(self, entity: EntitySpec, f: FieldSpec, value: str) -> Verdict:
        data: dict[str, Any] = dict(self.base(entity))
        data[f.name] = value
        for g in entity.fields:  # a checkbox sends nothing when unticked
            if g.type == "boolean" and data.get(g.name) == "true":
                data[g.name] = "y"
        before = self.max_id(entity.name)
        r = self.ui.post(f"/{entity.name}/add", data=data)
        if r.status_code in (302, 303):
            after = self.max_id(entity.name)
            if after > before:
                return Verdict(True, [], self.take(entity.name, after, f.name))
            page = self.ui.get(r.headers.get("Location", "/")).get_data(as_text=True)
            return Verdict(False, ["(nothing saved) " + m for m in flashes(page)])
        body = r.get_data(as_text=True)
        match = re.search(rf'id="{f.name}"(.*?)</td>', body, re.S)
        messages = re.findall(r'<div class="alert alert-danger">\s*(.*?)\s*</div>',
                              match.group(1), re.S) if match else []
        if not messages:
            messages = [m for m in re.findall(r'alert-danger[^>]*>\s*(?:<button.*?</button>)?'
                                              r'\s*(.*?)\s*</div>', body, re.S)]
        return Verdict(False, [line for m in messages for line in text_lines(m)])

    def api(self, entity: EntitySpec, f: FieldSpec, value: str) -> Verdict:
        body: dict[str, Any] = dict(self.base(entity))
        for g in entity.fields:
            if g.is_relation and g.name in body:
                body[g.name] = int(body[g.name])
        body[f.name] = value
        r = self.app.test_client().post(f"/api/v1/{entity.name}/", json=body,
                                        headers=self.api_headers)
        if r.status_code == 201:
            return Verdict(True, [], self.take(entity.name, r.json["id"], f.name))
        message = (r.json or {}).get("message")
        if isinstance(message, dict):
            found = message.get(f.name) or [m for ms in message.values() for m in ms]
            return Verdict(False, list(found))
        return Verdict(False, [f"{r.status_code} {message}"])

    def importer(self, entity: EntitySpec, cases: list[tuple[FieldSpec, str]], folder: Path
                 ) -> list[Verdict]:
        """One dry run per batch of cases; a row's verdict by its line."""
        from app.io.importer import import_file

        verdicts: list[Verdict] = []
        for start in range(0, len(cases), PREVIEW_ROWS):
            batch = cases[start:start + PREVIEW_ROWS]
            rows = []
            for f, value in batch:
                row = self.base(entity)
                row[f.name] = value
                rows.append(row)
            header = sorted({k for row in rows for k in row})
            path = folder / f"{entity.name}-{uuid.uuid4().hex[:6]}.csv"
            with open(path, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(header)
                writer.writerows([[row.get(h, "") for h in header] for row in rows])
            with self.app.test_request_context("/", headers=self.headers), \
                    acting_as(Actor(self.admin_id, "admin", "cli")):
                result = import_file(entity.name, path, dry_run=True)
            by_line = {p["line"]: p for p in result.preview}
            for i, (f, _) in enumerate(batch):
                line = i + 2
                seen = by_line.get(line)
                if seen is None:
                    verdicts.append(Verdict(False, ["(no preview)"]))
                elif seen["action"] == "rejected":
                    label = f.label.get(self.lang)
                    verdicts.append(Verdict(False, [r.removeprefix(f"{label}: ")
                                                    for r in seen["reasons"]]))
                else:
                    verdicts.append(Verdict(True, [], stored(seen["values"].get(f.column_name))))
        return verdicts


def test_the_form_the_api_and_the_importer_give_the_same_verdict(world: World, request: Any,
                                                                 tmp_path: Path) -> None:
    sender = Sender(world)
    tally = REPORT[f"{world.schema}/same-verdict"]
    tally.roles.add("Admin")
    seen: set[tuple[Any, ...]] = set()
    for entity in world.spec.entities:
        cases: list[tuple[FieldSpec, str]] = []
        for f in entity.fields:
            if f.is_relation or f.type == "user" or f.readonly or signature(f) in seen:
                continue
            seen.add(signature(f))
            cases += [(f, v) for v in values_for(f)]
        if not cases:
            continue
        tally.entities.add(entity.name)
        imported = sender.importer(entity, cases, tmp_path)
        for (f, value), by_import in zip(cases, imported, strict=True):
            by_api = sender.api(entity, f, value)
            ways = {"api": by_api, "import": by_import}
            if f.type != "enum":  # the select offers only its options: nothing else to send
                ways["form"] = sender.form(entity, f, value)
            tally.ways.update(ways)
            tally.assertions += 2
            what = f"Admin/{entity.name}/{f.name}={value!r}"
            accepted = {w: v.accepted for w, v in ways.items()}
            if len(set(accepted.values())) > 1:
                tally.mismatches.append(f"[{world.name}] {what} accept/refuse: expected the "
                                        f"same verdict got {ways}")
                continue
            refusals = {w: v.messages for w, v in ways.items() if not v.accepted}
            if len({tuple(m) for m in refusals.values()}) > 1:
                tally.mismatches.append(f"[{world.name}] {what} message: expected the same "
                                        f"message got {refusals}")
            values = {w: as_read(v.value, f, w, world) for w, v in ways.items() if v.accepted}
            if len({repr(v) for v in values.values()}) > 1:
                tally.mismatches.append(f"[{world.name}] {what} stored value: expected the "
                                        f"same value got {values}")
    tally.finish(world.name, "verdict assertions", request)
