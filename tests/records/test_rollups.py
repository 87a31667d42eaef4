"""Rollups (汇总字段) and classification (自动分级) stay right on every write.

On SQLite, PostgreSQL and MariaDB: after create, update (value, moving the child
to another parent, the `where` field), delete, delete_many, import (new rows and
upserts), a bulk statement, a database cascade; `rollups rebuild` gives what an
independent GROUP BY gives; rollup and classified fields cannot be written
through the API, the form or an import. A generated test walks every rollup of
the shipped schemas after a demo seed.
"""

from __future__ import annotations

import csv
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.records import Invalid, records
from app.records.rollups import rebuild
from app.state import state
from tests.conftest import BACKENDS, CRM, LIBRARY, login

SHOP = Path(__file__).with_name("shop.yaml")


@pytest.fixture(scope="module", params=BACKENDS)
def shop(request: pytest.FixtureRequest, app_factory: Any) -> Flask:
    return app_factory(SHOP, request.param)


def uid() -> str:
    return uuid.uuid4().hex[:8]


def row(app: Flask, entity: str, pk: int) -> dict[str, Any]:
    """The stored row, read with a fresh session."""
    with app.app_context():
        table = state().models.table(entity)
        found = dict(state().db.session.execute(
            sa.select(table).where(table.c.id == pk)).mappings().one())
        state().db.session.remove()
        return found


def create(app: Flask, entity: str, **values: Any) -> int:
    with app.app_context():
        obj = records(entity, None).create(values)
        pk = obj.id
        state().db.session.remove()
        return pk


def update(app: Flask, entity: str, pk: int, **values: Any) -> None:
    with app.app_context():
        service = records(entity, None)
        service.update(service.get(pk, "update"), values)
        state().db.session.remove()


def member_values(app: Flask, pk: int) -> tuple[Any, ...]:
    r = row(app, "member", pk)
    return (_num(r["spent"]), r["buys"], r["points"], r["tier"])


def _num(value: Any) -> Any:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


def new_member(app: Flask, club: int | None = None) -> int:
    return create(app, "member", name=f"m-{uid()}", club=club)


def buy(app: Flask, member: int, amount: str, paid: bool = True, **more: Any) -> int:
    return create(app, "purchase", ref=f"p-{uid()}", member=member, amount=Decimal(amount),
                  paid=paid, **more)


# -- the service paths ----------------------------------------------------------------


def test_a_new_member_starts_at_zero_and_plain(shop: Flask) -> None:
    m = new_member(shop)
    assert member_values(shop, m) == (Decimal("0.00"), 0, 0, "plain")


def test_create_update_and_where_field_change(shop: Flask) -> None:
    m = new_member(shop)
    before = row(shop, "member", m)
    p1 = buy(shop, m, "600.50")
    assert member_values(shop, m) == (Decimal("600.50"), 1, 6, "silver")
    p2 = buy(shop, m, "500", paid=False)  # not paid: counted, not summed
    assert member_values(shop, m) == (Decimal("600.50"), 2, 6, "silver")
    update(shop, "purchase", p2, paid=True)  # the where field changes
    assert member_values(shop, m) == (Decimal("1100.50"), 2, 11, "gold")
    update(shop, "purchase", p1, amount=Decimal("100"))  # the value changes
    assert member_values(shop, m) == (Decimal("600.00"), 2, 6, "silver")
    after = row(shop, "member", m)
    assert _num(after["average"]) == Decimal("300.00")
    # nobody edited the member: its version and updated_at stay (an open form stays valid)
    assert (after["version"], after["updated_at"]) == (before["version"], before["updated_at"])


def test_moving_a_purchase_recomputes_both_members(shop: Flask) -> None:
    a, b = new_member(shop), new_member(shop)
    p = buy(shop, a, "1200")
    assert member_values(shop, a)[3] == "gold"
    update(shop, "purchase", p, member=b)
    assert member_values(shop, a) == (Decimal("0.00"), 0, 0, "plain")
    assert member_values(shop, b) == (Decimal("1200.00"), 1, 12, "gold")


def test_delete_and_delete_many(shop: Flask) -> None:
    m = new_member(shop)
    ids = [buy(shop, m, "10", day=None) for _ in range(4)]
    assert member_values(shop, m) == (Decimal("40.00"), 4, 0, "silver")
    with shop.app_context():
        service = records("purchase", None)
        service.delete(service.get(ids[0], "delete"))
        state().db.session.remove()
    assert member_values(shop, m)[:2] == (Decimal("30.00"), 3)
    with shop.app_context():
        service = records("purchase", None)
        service.delete_many([service.get(i, "delete") for i in ids[1:]])
        state().db.session.remove()
    assert member_values(shop, m) == (Decimal("0.00"), 0, 0, "plain")


def test_rollup_of_a_rollup_and_a_parent_cascade(shop: Flask) -> None:
    club = create(shop, "club", name=f"c-{uid()}")
    a, b = new_member(shop, club), new_member(shop, club)
    buy(shop, a, "100")
    buy(shop, b, "250")
    r = row(shop, "club", club)
    assert (_num(r["total"]), r["members"]) == (Decimal("350.00"), 2)
    with shop.app_context():  # the member goes, its purchases with it (ON DELETE CASCADE)
        service = records("member", None)
        service.delete(service.get(b, "delete"))
        state().db.session.remove()
    r = row(shop, "club", club)
    assert (_num(r["total"]), r["members"]) == (Decimal("100.00"), 1)


def test_a_set_null_cascade_recomputes_the_old_parent(shop: Flask) -> None:
    store = create(shop, "store", name=f"s-{uid()}")
    m = new_member(shop)
    buy(shop, m, "10", store=store)
    buy(shop, m, "10", store=store)
    assert row(shop, "member", m)["in_store"] == 2
    with shop.app_context():  # the database empties purchase.store (ON DELETE SET NULL)
        service = records("store", None)
        service.delete(service.get(store, "delete"))
        state().db.session.remove()
    assert row(shop, "member", m)["in_store"] == 0


def test_a_bulk_statement_recomputes_in_the_same_transaction(shop: Flask) -> None:
    m = new_member(shop)
    for _ in range(3):
        buy(shop, m, "400", paid=False)
    assert member_values(shop, m) == (Decimal("0.00"), 3, 0, "silver")
    with shop.app_context():  # bulk set-field: paid = true on every purchase of m
        table = state().models.table("purchase")
        session = state().db.session
        session.execute(sa.update(table).where(table.c.member_id == m).values(paid=True))
        session.commit()
        state().db.session.remove()
    assert member_values(shop, m) == (Decimal("1200.00"), 3, 12, "gold")


def test_a_rolled_back_write_leaves_the_parent_as_it_was(shop: Flask) -> None:
    m = new_member(shop)
    buy(shop, m, "50")
    with shop.app_context():
        with pytest.raises(Invalid):  # a duplicate ref: refused, rolled back
            ref = row(shop, "purchase", 1)["ref"]
            records("purchase", None).create({"ref": ref, "member": m, "amount": Decimal(9)})
        state().db.session.remove()
    assert member_values(shop, m)[:2] == (Decimal("50.00"), 1)


def test_the_parent_change_is_audited_in_the_same_transaction(shop: Flask) -> None:
    m = new_member(shop)
    buy(shop, m, "70")
    with shop.app_context():
        log = state().models.system["audit_log"]
        entries = state().db.session.execute(
            sa.select(log.c.action, log.c.changes).where(log.c.entity == "member",
                                                         log.c.record_id == str(m))
            .order_by(log.c.id)).all()
        state().db.session.remove()
    assert entries[0].action == "create"
    changes = json.loads(entries[-1].changes)
    assert entries[-1].action == "update" and "spent" in changes and "tier" in changes


# -- import --------------------------------------------------------------------------


def write_csv(path: Path, rows: list[list[Any]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_import_new_rows_and_upserts(shop: Flask, tmp_path: Path) -> None:
    from app.io.importer import import_file

    names = [f"imp-{uid()}" for _ in range(3)]
    members = {n: create(shop, "member", name=n) for n in names}
    refs = [f"r-{uid()}" for _ in range(6)]
    rows = [["ref", "member", "amount", "paid"]]
    rows += [[ref, names[i % 3], "300", "true"] for i, ref in enumerate(refs)]
    with shop.app_context():
        result = import_file("purchase", write_csv(tmp_path / "new.csv", rows))
        state().db.session.remove()
    assert result.created == 6, result.problems
    for n in names:
        assert member_values(shop, members[n]) == (Decimal("600.00"), 2, 6, "silver")
    # upsert: two purchases move to the first member, one becomes unpaid
    rows = [["ref", "member", "amount", "paid"], [refs[1], names[0], "300", "true"],
            [refs[2], names[0], "300", "true"], [refs[0], names[0], "300", "false"]]
    with shop.app_context():
        result = import_file("purchase", write_csv(tmp_path / "upsert.csv", rows))
        state().db.session.remove()
    assert result.updated == 3, result.problems
    # names[0]: refs 0 and 3, now 1 and 2 too; ref 0 no longer paid
    assert member_values(shop, members[names[0]]) == (Decimal("900.00"), 4, 9, "silver")
    assert member_values(shop, members[names[1]])[:2] == (Decimal("300.00"), 1)
    assert member_values(shop, members[names[2]])[:2] == (Decimal("300.00"), 1)


def test_an_imported_rollup_column_is_not_written(shop: Flask, tmp_path: Path) -> None:
    from app.io.importer import import_file

    name = f"imp-{uid()}"
    rows = [["name", "spent", "tier"], [name, "99999", "gold"]]
    with shop.app_context():
        result = import_file("member", write_csv(tmp_path / "m.csv", rows))
        state().db.session.remove()
    assert result.created == 1 and result.unknown_columns == []
    assert result.computed_columns == ["spent", "tier"]
    with shop.app_context():
        table = state().models.table("member")
        pk = state().db.session.execute(
            sa.select(table.c.id).where(table.c.name == name)).scalar()
        state().db.session.remove()
    assert member_values(shop, pk) == (Decimal("0.00"), 0, 0, "plain")


# -- read-only -------------------------------------------------------------------------


def test_the_api_refuses_writing_a_rollup_in_chinese(shop: Flask) -> None:
    m = new_member(shop)
    client = shop.test_client()
    token = client.post("/api/v1/security/login", json={
        "username": "admin", "password": "Admin-Pass-2024!", "provider": "db"}).json
    headers = {"Authorization": f"Bearer {token['access_token']}", "Accept-Language": "zh"}
    response = client.put(f"/api/v1/member/{m}", json={"spent": "5000", "tier": "gold"},
                          headers=headers)
    assert response.status_code == 422, response.data
    text = json.dumps(response.json, ensure_ascii=False)
    assert "spent" in text and "tier" in text and "计算" in text
    response = client.post("/api/v1/member/", json={"name": f"x-{uid()}", "points": 5},
                           headers=headers)
    assert response.status_code == 422
    assert member_values(shop, m) == (Decimal("0.00"), 0, 0, "plain")


def test_the_service_refuses_writing_a_rollup(shop: Flask) -> None:
    m = new_member(shop)
    with shop.app_context():
        service = records("member", None)
        with pytest.raises(Invalid) as refused:
            service.update(service.get(m, "update"), {"spent": Decimal(5)})
        assert set(refused.value.errors) == {"spent"}
        state().db.session.remove()


def test_the_form_has_no_rollup_input_and_ignores_one(shop: Flask) -> None:
    m = new_member(shop)
    buy(shop, m, "20")
    with shop.test_client() as client:
        login(client)
        page = client.get(f"/member/edit/{m}").get_data(as_text=True)
        assert 'name="name"' in page
        assert 'name="spent"' not in page and 'name="tier"' not in page
        response = client.post(f"/member/edit/{m}", data={
            "name": row(shop, "member", m)["name"], "spent": "99999", "tier": "gold"})
        assert response.status_code in (200, 302)
        shown = client.get(f"/member/show/{m}").get_data(as_text=True)
    assert member_values(shop, m) == (Decimal("20.00"), 1, 0, "silver")
    assert "20.00" in shown


def test_the_list_sorts_and_filters_by_a_rollup(shop: Flask) -> None:
    m, low = new_member(shop), new_member(shop)
    buy(shop, m, "5000")
    buy(shop, low, "1")
    top_name, low_name = row(shop, "member", m)["name"], row(shop, "member", low)["name"]
    with shop.test_client() as client:
        login(client)
        page = client.get("/member/list/?_oc_MemberView=spent&_od_MemberView=desc"
                          "&psize_MemberView=100").get_data(as_text=True)
        assert page.index(top_name) < page.index(low_name)
        assert "¥5,000.00" in page or "5,000.00" in page  # formatted like a decimal
        page = client.get("/member/list/?f_tier=gold&psize_MemberView=100").get_data(
            as_text=True)
        assert top_name in page and low_name not in page
    with shop.app_context():
        service = records("member", None)
        table = service.table
        top = service.session.execute(
            service.scoped(sa.select(table.c.id).order_by(table.c.spent.desc()).limit(1))
        ).scalar()
        gold = service.session.execute(
            service.scoped(sa.select(sa.func.count()).select_from(table)
                           .where(table.c.tier == "gold"))).scalar()
        state().db.session.remove()
    assert top == m and gold >= 1


# -- rebuild, and every rollup of every schema ---------------------------------------


def independent(app: Flask) -> list[tuple[str, int, str, Any, Any]]:
    """(entity, id, field, stored, expected) for every rollup and classified field.

    The expected rollup is a GROUP BY over the child table (not the correlated
    statement the app runs); the expected class is the rules evaluated in Python.
    """
    from app.records.scope import ScopeCompiler

    out = []
    with app.app_context():
        st = state()
        session = st.db.session
        for entity in st.spec.entities:
            table = st.models.table(entity.name)
            rows = {r["id"]: dict(r) for r in session.execute(sa.select(table)).mappings()}
            for f in entity.fields:
                if f.rollup is None:
                    continue
                r = f.rollup
                child = st.spec.entity(r.child)
                ctable = st.models.table(child.name)
                via = ctable.c[child.field(r.via).column_name]
                col = ctable.c["id" if r.field == "id" else child.field(r.field).column_name]
                agg = sa.func.count(col) if r.agg == "count" else getattr(sa.func, r.agg)(col)
                stmt = sa.select(via, agg).group_by(via)
                if r.where is not None:
                    stmt = stmt.where(ScopeCompiler(st.spec, 0).compile(child, r.where))
                found = dict(session.execute(stmt).all())
                for pk, values in rows.items():
                    expected = expect(f, found.get(pk))
                    out.append((entity.name, pk, f.name, values[f.name], expected))
            for f in (x for x in entity.fields if x.classify):
                for pk, values in rows.items():
                    out.append((entity.name, pk, f.name, values[f.name], classify(f, values)))
        session.remove()
    return out


def expect(f: Any, value: Any) -> Any:
    r = f.rollup
    if value is None:
        return 0 if r.agg in ("count", "sum") else None
    if f.type == "date":
        return value
    value = Decimal(str(value))
    if r.multiply is not None:
        value *= r.multiply
    if f.type == "integer":
        return int(value // 1)
    return value.quantize(Decimal(1).scaleb(-f.scale))


def classify(f: Any, values: dict[str, Any]) -> str:
    for rule in f.classify:
        if rule.when is None or holds(rule.when, values):
            return rule.value
    raise AssertionError("no default")  # pragma: no cover


def holds(cond: Any, values: dict[str, Any]) -> bool:
    if cond.kind == "and":
        return all(holds(c, values) for c in cond.items)
    if cond.kind == "or":
        return any(holds(c, values) for c in cond.items)
    assert len(cond.path) == 1, "the generated test reads fields of the record itself"
    left, right = values[cond.path[0]], cond.value
    if cond.op in ("eq", "ne"):
        return (left == right) == (cond.op == "eq")
    if cond.op == "in":
        return left in right
    if left is None:
        return False
    left, right = Decimal(str(left)), Decimal(str(right))
    return {"gt": left > right, "gte": left >= right, "lt": left < right,
            "lte": left <= right}[cond.op]


def same(stored: Any, expected: Any) -> bool:
    if stored is None or expected is None:
        return stored is None and expected is None
    if isinstance(expected, Decimal | int) and not isinstance(expected, bool):
        return Decimal(str(stored)) == Decimal(str(expected))
    return stored == expected


def mismatches(app: Flask) -> list[tuple[Any, ...]]:
    return [item for item in independent(app) if not same(item[3], item[4])]


def test_rebuild_gives_the_independent_aggregate(shop: Flask) -> None:
    m = new_member(shop)
    buy(shop, m, "10")
    with shop.app_context():  # damage the stored values behind the app's back
        member = state().models.table("member")
        state().db.session.connection().execute(
            sa.update(member).values(spent=777, buys=99, tier="gold"))
        state().db.session.commit()
        state().db.session.remove()
    assert mismatches(shop)
    with shop.app_context():
        assert rebuild(state().db.session) == ["member", "club"]
        state().db.session.remove()
    assert mismatches(shop) == []


def test_the_rebuild_command(shop: Flask) -> None:
    from app.records.rollups import rollups_cli

    runner = shop.test_cli_runner()
    result = runner.invoke(rollups_cli, ["rebuild", "member"])
    assert result.exit_code == 0, result.output
    assert "member" in result.output
    assert runner.invoke(rollups_cli, ["rebuild"]).exit_code == 0
    assert runner.invoke(rollups_cli, ["rebuild", "nosuch"]).exit_code != 0


@pytest.mark.parametrize("schema", [CRM, LIBRARY], ids=["crm", "library"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_rollup_of_a_shipped_schema_after_demo_seed(app_factory: Any, schema: Path,
                                                         backend: str) -> None:
    from app.demo import seed_demo

    app = app_factory(schema, backend)
    with app.app_context():
        assert any(f.rollup for e in state().spec.entities for f in e.fields)
        seed_demo(rows=30, seed=7)
        state().db.session.remove()
    found = independent(app)
    assert found and mismatches(app) == []
    # the demo data is not all zeros: some rollup has a value, some class is not the default
    assert any(item[4] not in (0, None) for item in found)


def test_concurrent_writers_of_one_parent_lose_nothing(shop: Flask) -> None:
    """Two threads add purchases to the same member at once; the total has them all."""
    import threading

    m = new_member(shop)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(15):
                buy(shop, m, "10")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert member_values(shop, m)[:2] == (Decimal("450.00"), 45)


def test_bulk_set_field_recomputes_and_never_offers_a_rollup(shop: Flask) -> None:
    from app.views.grid_bulk import set_field_on, settable_fields

    m = new_member(shop)
    ids = [buy(shop, m, "300", paid=False) for _ in range(4)]
    with shop.app_context():
        assert {"spent", "buys", "points", "tier"}.isdisjoint(
            f.name for f in settable_fields(records("member", None)))
        summary = set_field_on(records("purchase", None), ids, "paid", True)
        state().db.session.remove()
    assert summary["updated"] == 4
    assert member_values(shop, m) == (Decimal("1200.00"), 4, 12, "gold")
