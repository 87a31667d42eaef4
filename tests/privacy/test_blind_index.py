"""A data subject's looked-up sensitive value (unique, searched, filtered, the import key) is
sealed like the others and found again through its blind index, on every database; erasing
the record leaves no plaintext of it anywhere in the database."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from app.io.importer import import_file
from app.privacy.lookup import backfill_all
from app.records import records
from app.state import state
from app.views.grid_filters import conditions_clause
from tests.conftest import BACKENDS

MEMBERS = """\
version: 1
app: {title: {en: Club, zh: 俱乐部}, default_locale: zh}
entities:
  member:
    label: {en: Member, zh: 会员}
    title: name
    subject: {erase: anonymise}
    fields:
      name:   {type: string, required: true, label: {en: Name, zh: 姓名}}
      mobile: {type: phone, sensitive: true, unique: true, label: {en: Mobile, zh: 手机}}
      email:  {type: email, sensitive: true, label: {en: Email, zh: 邮箱}}
      note:   {type: text, sensitive: true, label: {en: Note, zh: 备注}}
    search: [name, mobile]
    filters: [email]
    import_key: mobile
"""


def _raw(conn: sa.Connection) -> list[tuple]:
    table = sa.table("member", sa.column("id"), sa.column("mobile"), sa.column("mobile__bi"),
                     sa.column("email"), sa.column("email__bi"), sa.column("note"))
    return [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.id))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_lookups_by_blind_index_and_nothing_clear_after_erasure(app_factory, tmp_path: Path,
                                                               backend: str) -> None:
    schema = tmp_path / "club.yaml"
    schema.write_text(MEMBERS, encoding="utf-8")
    app = app_factory(schema, backend)
    mobile = "139" + str(uuid.uuid4().int)[:8]
    email = f"Zhang.{uuid.uuid4().hex[:6]}@Example.com"
    with app.app_context():
        members = records("member", None)
        obj = members.create({"name": "张三", "mobile": mobile, "email": email,
                              "note": "note-secret-31"})
        pk = obj.id
        with state().db.engine.connect() as conn:
            row = _raw(conn)[0]
        assert all(str(v).startswith("sk1:") for v in (row[1], row[3], row[5]))
        assert len(row[2]) == 64 and len(row[4]) == 64 and mobile not in row[2]

        # search box: the whole number (typed with spaces too); a part finds nothing
        table = members.table
        typed = f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}"
        for text, found in ((mobile, [pk]), (typed, [pk]), (mobile[:7], [])):
            clause = members.search_clause(text)
            ids = list(state().db.session.execute(sa.select(table.c.id).where(clause)).scalars())
            assert ids == found, text
        # the grid's filter: equal whole values, case of an e-mail ignored
        clause = conditions_clause(members, MultiDict({"f_email__has": email.lower()}))
        assert list(state().db.session.execute(
            sa.select(table.c.id).where(clause)).scalars()) == [pk]
        assert not members.may_sort("mobile") and not members.may_group("mobile")

        # unique: the same number typed differently is taken
        errors = members.validate({"name": "李四", "mobile": typed})
        assert "mobile" in errors
        state().db.session.rollback()

        # import by the key: the row updates the member, a new number creates one
        other = "138" + str(uuid.uuid4().int)[:8]
        path = tmp_path / "members.csv"
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["姓名", "手机", "备注"])
            writer.writerow(["张三丰", mobile, "note-secret-32"])
            writer.writerow(["王五", other, "note-secret-33"])
        result = import_file("member", path)
        assert (result.created, result.updated, result.rejected) == (1, 1, 0), result.counts()
        state().db.session.remove()
        again = records("member", None).get(pk)
        assert (again.name, again.mobile, again.note) == ("张三丰", mobile, "note-secret-32")
        assert import_file("member", path).unchanged == 2

        # erase: the row is anonymised, its index gone; no plaintext of it anywhere
        records("member", None).erase(records("member", None).get(pk))
        with state().db.engine.connect() as conn:
            erased = next(r for r in _raw(conn) if r[0] == pk)
            dump = repr(_raw(conn)) + repr(conn.execute(sa.text(
                "SELECT changes, record_title FROM audit_log")).all())
        assert erased[1] is None and erased[2] is None and erased[4] is None
        for secret in (mobile, email, "note-secret-31", "note-secret-32"):
            assert secret not in dump, secret
        assert backfill_all() == {"member": 0}  # nothing left in clear to seal
    if backend == "sqlite":
        raw = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")).read_bytes()
        for secret in (mobile, email, "note-secret-31", "note-secret-32"):
            assert secret.encode() not in raw, secret


def test_backfill_seals_values_written_before_the_field_was_sealed(app_factory,
                                                                  tmp_path: Path) -> None:
    schema = tmp_path / "club.yaml"
    schema.write_text(MEMBERS, encoding="utf-8")
    app = app_factory(schema, "sqlite")
    mobile = "137" + str(uuid.uuid4().int)[:8]
    with app.app_context():
        table = sa.table("member", sa.column("id"), sa.column("name"), sa.column("mobile"),
                         sa.column("mobile__bi"), sa.column("version"),
                         sa.column("created_at"), sa.column("updated_at"))
        now = sa.func.current_timestamp()
        with state().db.engine.begin() as conn:  # as an upgrade from a clear column leaves it
            conn.execute(sa.insert(table).values(name="旧会员", mobile=mobile, version=1,
                                                 created_at=now, updated_at=now))
        assert backfill_all() == {"member": 1}
        with state().db.engine.connect() as conn:
            row = conn.execute(sa.select(table)).one()
        assert row.mobile.startswith("sk1:") and row.mobile__bi
        members = records("member", None)
        clause = members.search_clause(mobile)
        found = state().db.session.execute(sa.select(members.table.c.id).where(clause)).scalars()
        assert list(found) == [row.id]
        assert members.get(row.id).mobile == mobile
