"""The list grid (app/views/grid.py), generated from the schemas.

For every entity of the CRM and the library schema, every field of the filter
panel gets a filter through the panel's URL form, with a value taken from the
seeded rows, and the list's count must equal an independent SQL count. Chips
survive paging and sorting; saved views are private or shared per role; bulk
"set a field" goes through the record service (a refused record is reported);
"export selected" holds exactly the selected rows, masked for a reader without
`view_sensitive`. SQLite and PostgreSQL; MariaDB for one smoke test.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from tests.conftest import ADMIN_PASSWORD, CRM, LIBRARY, login

BACKENDS = ["sqlite", "postgresql"]
PASSWORD = "Grid-Test-Pass-42!"


def seed(app: Any, rows: int = 30) -> None:
    from app.demo import seed_demo

    with app.app_context():
        seed_demo(rows=rows, seed=7)


_APPS: dict[tuple[str, str], Any] = {}


def app_for(app_factory: Any, schema: str, backend: str) -> Any:
    """One seeded app per (schema, backend) for the whole module."""
    if (schema, backend) not in _APPS:
        app = app_factory(CRM if schema == "crm" else LIBRARY, backend)
        seed(app)
        _APPS[(schema, backend)] = app
    return _APPS[(schema, backend)]


@pytest.fixture(scope="module", params=BACKENDS)
def crm(request: pytest.FixtureRequest, app_factory: Any) -> Any:
    return app_for(app_factory, "crm", request.param)


@pytest.fixture(scope="module", params=[(s, b) for b in BACKENDS for s in ("crm", "library")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def any_app(request: pytest.FixtureRequest, app_factory: Any) -> Any:
    """The CRM and the library schema, on every backend."""
    return app_for(app_factory, *request.param)


def client_of(app: Any, username: str = "admin", password: str | None = None) -> Any:
    client = app.test_client()
    if password is None:
        login(client)
    else:
        login(client, username, password)
    return client


def make_user(app: Any, role: str, employee: bool = True) -> tuple[str, int]:
    """A login with `role`, linked to a fresh employee record where the schema has one."""
    from app.state import state

    name = f"{role}_{uuid.uuid4().hex[:6]}"
    with app.app_context():
        sm = app.appbuilder.sm
        user = sm.add_user(name, name, "Test", f"{name}@example.com", [sm.find_role(role)],
                           password=PASSWORD)
        assert user, name
        spec = state().spec
        target = next((e for e in spec.entities if e.user_field is not None), None)
        employee_id = 0
        if employee and target is not None:
            table = state().models.table(target.name)
            row: dict[str, Any] = {target.user_field.column_name: user.id,  # type: ignore[union-attr]
                                   "created_at": dt.datetime(2026, 1, 1),
                                   "updated_at": dt.datetime(2026, 1, 1)}
            for f in target.fields:
                if f.required and not f.is_relation and f.type not in ("user",):
                    row[f.column_name] = f"{f.name}-{uuid.uuid4().hex[:8]}"
            session = state().db.session
            employee_id = session.execute(sa.insert(table).values(**row)).inserted_primary_key[0]
            session.commit()
        return name, employee_id


def list_count(client: Any, entity: str, args: dict[str, str]) -> int:
    response = client.get(f"/{entity}/list/?{urlencode(args)}")
    assert response.status_code == 200, response.data[:300]
    page = response.data.decode()
    match = re.search(r'class="pull-right sd-count">\D*(\d+)', page)
    if match is None:
        assert "sd-empty" in page, page[:2000]
        return 0
    return int(match.group(1))


def sql_count(app: Any, sql: str, **params: Any) -> int:
    from app.state import state

    with app.app_context():
        return state().db.session.execute(sa.text(sql), params).scalar_one()


def sample(app: Any, sql: str) -> Any:
    from app.state import state

    with app.app_context():
        return state().db.session.execute(sa.text(sql)).scalar()


def utc_midnight(day: dt.date, zone: str) -> dt.datetime:
    """Midnight of `day` in time zone `zone`, as naive UTC (how times are stored)."""
    from zoneinfo import ZoneInfo

    local = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(zone))
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def panel_cases(app: Any) -> Iterator[tuple[str, dict[str, str], str, dict[str, Any]]]:
    """(entity, URL args, independent SQL count, params) for every panel field of every entity.

    Values come from the seeded rows; enums are given by their label.
    """
    from app.records import records
    from app.state import state
    from app.views.grid import control_kind, panel_fields

    with app.test_request_context("/"):
        from flask_login import login_user

        login_user(app.appbuilder.sm.find_user("admin"))
        spec = state().spec
        for entity in spec.entities:
            service = records(entity.name)
            t = entity.name
            for f in panel_fields(service):
                kind = control_kind(f)
                col = f.column_name if f.name not in ("created_by", "updated_by") \
                    else f"{f.name}_id"
                key = f"f_{f.name}"
                if f.is_many:
                    m2m = state().models.m2m_tables[(entity.name, f.name)]
                    left, right = (c.name for c in m2m.c)
                    value = sample(app, f"SELECT {right} FROM {m2m.name} LIMIT 1")
                    if value is None:
                        continue
                    yield t, {key: str(value)}, (
                        f"SELECT count(DISTINCT {left}) FROM {m2m.name} WHERE {right} = :v"
                    ), {"v": value}
                    continue
                value = sample(app, f"SELECT {col} FROM {t} WHERE {col} IS NOT NULL "
                                    f"ORDER BY id LIMIT 1")
                if value is None:
                    continue
                where = f"SELECT count(*) FROM {t} WHERE "
                if kind == "choice" and f.type == "enum":
                    label = f.choice_label(value, "en")
                    yield t, {key: label}, where + f"{col} = :v", {"v": value}
                elif kind == "choice":
                    yield t, {key: "1" if value else "0"}, where + f"{col} = :v", \
                        {"v": bool(value)}
                elif kind == "picker":
                    yield t, {key: str(value)}, where + f"{col} = :v", {"v": value}
                elif kind == "range" and f.type in ("date", "datetime"):
                    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(
                        str(value)[:10])
                    if isinstance(day, dt.datetime):
                        day = day.date()
                    first = day - dt.timedelta(days=30)
                    day += dt.timedelta(days=1)  # the sample's local day may be its UTC day + 1
                    low: Any = first
                    high: Any = day + dt.timedelta(days=1)
                    if f.type == "datetime":  # whole days in the app's time zone, stored UTC
                        low, high = utc_midnight(low, spec.timezone), \
                            utc_midnight(high, spec.timezone)
                    yield t, {key + "__from": first.isoformat(), key + "__to": day.isoformat()}, \
                        where + f"{col} >= :a AND {col} < :b", {"a": low, "b": high}
                elif kind == "range":
                    yield t, {key + "__from": str(value)}, where + f"{col} >= :v", {"v": value}
                    yield t, {key + "__to": str(value)}, where + f"{col} <= :v", {"v": value}
                elif kind == "contains":
                    text = str(value)
                    part = text[1:4] if len(text) > 4 else text
                    if "%" in part or "_" in part or not part.strip():
                        continue
                    yield t, {key + "__has": part}, \
                        where + f"lower({col}) LIKE :v", {"v": f"%{part.lower()}%"}


def test_every_panel_filter_matches_an_independent_count(any_app: Any) -> None:
    app = any_app
    client = client_of(app)
    cases = list(panel_cases(app))
    assert len(cases) >= 8, cases
    kinds = {tuple(sorted(args)) for _, args, _, _ in cases}
    assert any(k[0].endswith("__from") for k in kinds)  # ranges are among them
    for entity, args, sql, params in cases:
        expected = sql_count(app, sql, **params)
        assert list_count(client, entity, args) == expected, (entity, args, expected)
        assert expected > 0 or "__has" in str(args), (entity, args)


def test_enum_filters_by_label_in_either_language_and_any_of(crm: Any) -> None:
    client = client_of(crm)
    both = sql_count(crm, "SELECT count(*) FROM customer WHERE status IN ('active', 'potential')")
    active = sql_count(crm, "SELECT count(*) FROM customer WHERE status = 'active'")
    assert active > 0
    assert list_count(client, "customer", {"f_status": "活跃"}) == active
    assert list_count(client, "customer", {"f_status": "active"}) == active
    assert list_count(client, "customer", {"f_status": "active,potential"}) == both
    # A value the field cannot hold is ignored, never sent to the database.
    total = sql_count(crm, "SELECT count(*) FROM customer")
    assert list_count(client, "customer", {"f_status": "no-such-state"}) == total
    assert list_count(client, "customer", {"f_created_at__from": "abc"}) == total


def test_chips_survive_paging_sorting_and_page_size(crm: Any) -> None:
    client = client_of(crm)
    client.get("/lang/zh")
    args = {"f_status": "active,potential", "f_created_at__from": "2020-01-01",
            "psize_CustomerView": "10"}
    expected = sql_count(crm, "SELECT count(*) FROM customer "
                              "WHERE status IN ('active', 'potential')")
    assert expected > 10, "the seed must give more than one page"
    page = client.get(f"/customer/list/?{urlencode(args)}").data.decode()
    assert "状态: 活跃, 潜在客户" in page or "状态: 潜在客户, 活跃" in page or "状态:" in page
    links = re.findall(r'href="(/customer/list/\?[^"]*page_CustomerView=1[^"]*)"', page)
    assert links, "a page link"
    sort = re.findall(r'href="?(/customer/list/\?[^" >]*_oc_CustomerView=name[^" >]*)', page)
    assert sort, "a sort link"
    size = re.findall(r'href="(/customer/list/\?[^"]*psize_CustomerView=50[^"]*)"', page)
    for link in (links[0], sort[0], size[0]):
        link = link.replace("&amp;", "&")
        again = client.get(link).data.decode()
        assert "sd-chip-remove" in again and again.count('class="sd-chip"') == 2, link
        match = re.search(r'class="pull-right sd-count">\D*(\d+)', again)
        assert match and int(match.group(1)) == expected, link
    # removing one chip keeps the other
    remove = re.findall(r'href="([^"]*)" class="sd-chip-remove"', page)[0].replace("&amp;", "&")
    left = client.get(remove).data.decode()
    assert left.count('class="sd-chip"') == 1


def test_sensitive_field_is_never_a_filter_for_a_reader_without_view_sensitive(crm: Any) -> None:
    from app.state import state

    name, employee = make_user(crm, "operator")
    with crm.app_context():
        table = state().models.table("customer")
        session = state().db.session
        session.execute(table.update().where(table.c.id.in_(
            sa.select(table.c.id).order_by(table.c.id).limit(3).scalar_subquery()
        )).values(owner_id=employee))
        session.commit()
        phone = session.execute(sa.select(table.c.phone).where(
            table.c.owner_id == employee, table.c.phone.is_not(None))).scalar()
    operator = client_of(crm, name, PASSWORD)
    page = operator.get("/customer/list/").data.decode()
    assert 'name="f_owner"' in page and 'name="f_phone__has"' not in page
    assert list_count(operator, "customer", {}) == 3
    # A hand-written filter on the masked field is ignored: no oracle on its value.
    assert list_count(operator, "customer", {"f_phone__has": "no-such-phone"}) == 3
    if phone:
        assert list_count(client_of(crm), "customer", {"f_phone__has": phone}) >= 1


def test_picker_offers_only_rows_the_user_may_pick_and_pages(crm: Any) -> None:
    admin = client_of(crm)
    first = admin.get("/grid/customer/pick/owner").get_json()
    employees = sql_count(crm, "SELECT count(*) FROM employee")
    assert len(first["results"]) == min(20, employees)
    assert first["pagination"]["more"] == (employees > 20)
    name = sample(crm, "SELECT name FROM employee ORDER BY id LIMIT 1")
    found = admin.get(f"/grid/customer/pick/owner?q={name}").get_json()["results"]
    assert name in [r["text"] for r in found]
    # a field that is not a relation, or an unknown entity, is not a picker
    assert admin.get("/grid/customer/pick/name").status_code == 404
    assert admin.get("/grid/nosuch/pick/owner").status_code == 404
    auditor, _ = make_user(crm, "auditor", employee=False)
    client = client_of(crm, auditor, PASSWORD)
    assert client.get("/grid/customer/pick/owner").status_code == 200


def test_saved_views_are_private_or_shared_with_a_role(crm: Any) -> None:
    admin = client_of(crm)
    one, _ = make_user(crm, "operator")
    two, _ = make_user(crm, "operator")
    first, second = client_of(crm, one, PASSWORD), client_of(crm, two, PASSWORD)
    query = "f_status=active&q=x&cols=name,status&psize_CustomerView=50&page_CustomerView=2"
    r = first.post("/grid/customer/views", data={"name": "我的活跃客户", "query": query,
                                                 "is_default": "1"})
    assert r.status_code == 302
    location = r.headers["Location"]
    assert "f_status=active" in location and "cols=name%2Cstatus" in location
    assert "page_" not in location and "sv=" in location
    # the owner's bare list opens their default view
    bare = first.get("/customer/list/")
    assert bare.status_code == 302 and "sv=" in bare.headers["Location"]
    assert "我的活跃客户" in first.get("/customer/list/?sv=none").data.decode()
    # another user of the same role never sees it, nor gets it as default
    other = second.get("/customer/list/")
    assert other.status_code == 200 and "我的活跃客户" not in other.data.decode()
    view_id = int(re.search(r"sv=(\d+)", location).group(1))  # type: ignore[union-attr]
    assert second.post(f"/grid/customer/views/{view_id}/delete").status_code == 404
    # only an admin shares, and a shared view is read-only for the role's users
    assert first.post("/grid/customer/views", data={
        "name": "x", "query": "", "role": "operator"}).status_code == 403
    admin.post("/grid/customer/views", data={"name": "全员重点客户", "query": "f_level=A",
                                             "role": "operator"})
    page = second.get("/customer/list/?sv=none").data.decode()
    assert "全员重点客户" in page and "fa-lock" in page
    shared_id = sample(crm, "SELECT id FROM saved_view WHERE name = '全员重点客户'")
    assert second.post(f"/grid/customer/views/{shared_id}/delete").status_code == 404
    # the admin who shared it sees it (with the role) and may delete it
    assert "全员重点客户" in admin.get("/customer/list/?sv=none").data.decode()
    auditor, _ = make_user(crm, "auditor", employee=False)
    assert "全员重点客户" not in client_of(crm, auditor, PASSWORD).get(
        "/customer/list/?sv=none").data.decode()
    assert first.post(f"/grid/customer/views/{view_id}/delete").status_code == 302
    assert sample(crm, f"SELECT count(*) FROM saved_view WHERE id = {view_id}") == 0
    assert admin.post(f"/grid/customer/views/{shared_id}/delete").status_code == 302
    assert "全员重点客户" not in second.get("/customer/list/?sv=none").data.decode()


def test_column_chooser_shows_only_allowed_columns_in_order(crm: Any) -> None:
    admin = client_of(crm)
    page = admin.get("/customer/list/?cols=status,name,nosuch&sv=none").data.decode()
    head = page[page.index("<thead>"):page.index("</thead>")]
    assert head.index(">Status") < head.index(">Name") and head.count("</th>") == 4
    assert 'data-column="created_by"' in page


def test_bulk_set_field_goes_through_the_record_service(any_app: Any) -> None:
    from app.records import records
    from app.state import state
    from app.views.grid import settable_fields

    app = any_app
    client = client_of(app)
    client.get("/lang/zh")
    with app.test_request_context("/"):
        from flask_login import login_user

        login_user(app.appbuilder.sm.find_user("admin"))
        cases = []
        for entity in state().spec.entities:
            service = records(entity.name)
            fields = settable_fields(service)
            unique = next((f for f in fields if f.unique and f.type == "string"), None)
            enum = next((f for f in fields if f.type == "enum"), None)
            cases.append((entity, unique, enum))
        wf_entities = [e for e in state().spec.entities if e.workflow]
    assert any(u for _, u, _ in cases)
    for entity, unique, enum in cases:
        ids = [r for r in _ids(app, entity.name, 3)]
        if len(ids) < 2:
            continue
        if unique is not None:
            # the same unique value on two records: one saved, the other refused
            value = f"B{uuid.uuid4().hex[:8]}"
            r = client.post(f"/grid/{entity.name}/bulk/set_field", data={
                "rowid": [str(i) for i in ids[:2]], "field": unique.name, "value": value,
                "next": f"/{entity.name}/list/"})
            assert r.status_code == 302
            assert sql_count(app, f"SELECT count(*) FROM {entity.name} "
                                  f"WHERE {unique.name} = :v", v=value) == 1
            flashed = client.get(f"/{entity.name}/list/?sv=none").data.decode()
            assert "已更新 1 条" in flashed and "1 条未更新" in flashed, entity.name
        if enum is not None and len(enum.choices) > 1:
            id_list = ",".join(map(str, ids))
            for choice in (enum.choices[0], enum.choices[-1]):  # the second one changes each
                before = sql_count(app, f"SELECT sum(version) FROM {entity.name} "
                                        f"WHERE id IN ({id_list})")
                client.post(f"/grid/{entity.name}/bulk/set_field", data={
                    "rowid": [str(i) for i in ids], "field": enum.name,
                    "value": choice.label.zh})  # by its label, as the form's select sends
                assert sql_count(app, f"SELECT count(*) FROM {entity.name} "
                                      f"WHERE {enum.name} = :v AND id IN ({id_list})",
                                 v=choice.key) == len(ids), entity.name
            # written through the service: every record's version bumped, each audited
            assert sql_count(app, f"SELECT sum(version) FROM {entity.name} "
                                  f"WHERE id IN ({id_list})") == before + len(ids)
            assert sample(app, f"SELECT count(*) FROM audit_log WHERE entity = '{entity.name}' "
                               f"AND action = 'update'") >= len(ids)
    for entity in wf_entities:  # the workflow's state field is never settable in bulk
        ids = _ids(app, entity.name, 2)
        before = sample(app, f"SELECT {entity.workflow.field} FROM {entity.name} "  # type: ignore[union-attr]
                             f"WHERE id = {ids[0]}")
        client.post(f"/grid/{entity.name}/bulk/set_field", data={
            "rowid": [str(i) for i in ids], "field": entity.workflow.field,  # type: ignore[union-attr]
            "value": "closed"})
        assert sample(app, f"SELECT {entity.workflow.field} FROM {entity.name} "  # type: ignore[union-attr]
                           f"WHERE id = {ids[0]}") == before


def _ids(app: Any, entity: str, count: int) -> list[int]:
    from app.state import state

    with app.app_context():
        table = state().models.table(entity)
        return list(state().db.session.execute(
            sa.select(table.c.id).order_by(table.c.id).limit(count)).scalars())


def test_bulk_on_unreachable_rows_is_refused(crm: Any) -> None:
    name, _ = make_user(crm, "operator")
    operator = client_of(crm, name, PASSWORD)
    ids = _ids(crm, "customer", 2)
    r = operator.post("/grid/customer/bulk/set_field", data={
        "rowid": [str(i) for i in ids], "field": "industry", "value": "x"})
    assert r.status_code == 404
    assert operator.post("/grid/customer/bulk/delete", data={"rowid": "1"}).status_code == 403


def test_export_selected_holds_exactly_the_selected_rows_masked(crm: Any) -> None:
    from app.state import state

    name, employee = make_user(crm, "operator")
    with crm.app_context():
        table = state().models.table("customer")
        session = state().db.session
        chosen = list(session.execute(sa.select(table.c.id).where(
            table.c.phone.is_not(None)).order_by(table.c.id.desc()).limit(4)).scalars())
        session.execute(table.update().where(table.c.id.in_(chosen)).values(owner_id=employee))
        session.commit()
        rows = {r.name: r.phone for r in session.execute(
            sa.select(table.c.name, table.c.phone).where(table.c.id.in_(chosen[:3])))}
    operator = client_of(crm, name, PASSWORD)
    r = operator.post("/grid/customer/bulk/export", data={
        "rowid": [str(i) for i in chosen[:3]], "format": "csv"})
    assert r.status_code == 302 and "f_id=" in r.headers["Location"]
    download = operator.get(r.headers["Location"])
    assert download.status_code == 200
    reader = list(csv.reader(io.StringIO(download.data.decode("utf-8-sig"))))
    head, body = reader[0], reader[1:]
    names = {row[head.index("Name")]: row[head.index("Phone")] for row in body}
    assert len(body) == 3 and set(names) == set(rows)
    for customer, phone in names.items():
        assert phone != rows[customer] and "*" in phone  # masked
    detail = sample(crm, "SELECT detail FROM audit_log WHERE action = 'export' "
                         "AND entity = 'customer' ORDER BY id DESC LIMIT 1")
    assert "f_id" in detail


def test_mariadb_smoke(app_factory: Any) -> None:
    app = app_factory(CRM, "mariadb")
    seed(app, rows=15)
    client = client_of(app)
    active = sql_count(app, "SELECT count(*) FROM customer WHERE status = 'active'")
    assert list_count(client, "customer", {"f_status": "活跃"}) == active
    owner = sample(app, "SELECT owner_id FROM customer WHERE owner_id IS NOT NULL LIMIT 1")
    assert list_count(client, "customer", {"f_owner": str(owner)}) == sql_count(
        app, "SELECT count(*) FROM customer WHERE owner_id = :v", v=owner)
    assert client.get("/grid/customer/pick/owner?q=a").status_code == 200


def test_bulk_value_input_is_the_forms_widget_and_state_fields_have_none(crm: Any) -> None:
    admin = client_of(crm)
    admin.get("/lang/zh")
    select = admin.get("/grid/customer/field/source")
    assert select.status_code == 200
    html = select.data.decode()
    assert 'name="value"' in html and "<select" in html
    assert ">" + "微信" in html or "option" in html  # the enum's labels, as the form shows
    picker = admin.get("/grid/customer/field/owner").data.decode()
    assert "sd-picker" in picker and "/grid/customer/pick/owner" in picker
    date = admin.get("/grid/follow_up/field/followed_at").data.decode()
    assert 'type="datetime-local"' in date or 'name="value"' in date
    assert admin.get("/grid/service_request/field/status").status_code == 404
    assert admin.get("/grid/customer/field/nosuch").status_code == 404


def test_fab_filter_args_still_work_and_show_as_chips(crm: Any) -> None:
    admin = client_of(crm)
    expected = sql_count(crm, "SELECT count(*) FROM customer WHERE status = 'active'")
    page = admin.get("/customer/list/?_flt_0_status=Active").data.decode()
    assert re.search(r'class="sd-chip">Status [^<]*Active', page)
    assert list_count(admin, "customer", {"_flt_0_status": "Active"}) == expected
    # a FAB argument on a column without filters is ignored, and shows no chip
    assert 'class="sd-chip"' not in admin.get("/customer/list/?_flt_0_name=x").data.decode()


def test_a_filtered_list_costs_one_count_and_does_not_grow_with_page_size(crm: Any) -> None:
    from sqlalchemy import event

    from app.state import state

    admin = client_of(crm)
    owner = sample(crm, "SELECT owner_id FROM customer WHERE owner_id IS NOT NULL LIMIT 1")
    with crm.app_context():
        engine = state().db.engine

    def statements(size: int) -> list[str]:
        seen: list[str] = []

        def on_execute(conn, cursor, statement, params, context, many):  # noqa: ANN001
            if "user_session" not in statement:  # the sign-in's last-seen touch, throttled
                seen.append(statement)

        event.listen(engine, "before_cursor_execute", on_execute)
        try:
            args = {"f_status": "active,potential", "f_owner": str(owner),
                    "f_created_at__from": "2020-01-01", "sv": "none",
                    "psize_CustomerView": str(size)}
            assert admin.get(f"/customer/list/?{urlencode(args)}").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", on_execute)
        return seen

    statements(10)  # warm: first-request work (caches, the session's touch) is not per page
    small, large = statements(10), statements(100)
    assert len(small) == len(large), (len(small), len(large), small[:3])
    counts = [s for s in large if "count(" in s.lower() and "FROM customer" in s]
    assert len(counts) == 1, counts
    print(f"statements per filtered list page: {len(large)}")


def test_grid_posts_need_the_csrf_token_and_the_forms_carry_it(app_factory: Any) -> None:
    app = app_for(app_factory, "crm", "sqlite")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        client = app.test_client()
        page = client.get("/login/").data.decode()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        assert client.post("/login/", data={"username": "admin", "password": ADMIN_PASSWORD,
                                            "csrf_token": token}).status_code == 302
        page = client.get("/customer/list/?sv=none").data.decode()
        forms = re.findall(r'<form[^>]*method="post"[^>]*>(.*?)</form>', page, re.S)
        assert len(forms) >= 3 and all('name="csrf_token"' in f for f in forms)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        ids = [str(i) for i in _ids(app, "customer", 2)]
        refused = client.post("/grid/customer/views", data={"name": "无令牌", "query": ""})
        assert refused.status_code == 400
        assert client.post("/grid/customer/bulk/set_field", data={
            "rowid": ids, "field": "industry", "value": ""}).status_code == 400
        saved = client.post("/grid/customer/views", data={"name": "有令牌", "query": "",
                                                          "csrf_token": token})
        assert saved.status_code == 302
        # the show page's child lists use the same widget, without the bulk bar
        show = client.get(f"/customer/show/{ids[0]}")
        assert show.status_code == 200 and "sd-bulk-bar" not in show.data.decode()
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_bulk_sets_relations_and_deletes_through_the_service(crm: Any) -> None:
    admin = client_of(crm)
    ids = _ids(crm, "customer", 3)
    id_list = ",".join(map(str, ids))
    employee = sample(crm, "SELECT max(id) FROM employee")
    admin.post("/grid/customer/bulk/set_field", data={
        "rowid": [str(i) for i in ids], "field": "owner", "value": str(employee)})
    assert sql_count(crm, f"SELECT count(*) FROM customer WHERE owner_id = :v "
                          f"AND id IN ({id_list})", v=employee) == 3
    tags = [str(t) for t in _ids(crm, "tag", 2)]
    admin.post("/grid/customer/bulk/set_field", data={
        "rowid": [str(i) for i in ids], "field": "tags", "value": tags})
    assert sql_count(crm, f"SELECT count(*) FROM customer_tags WHERE customer_id IN ({id_list})"
                     ) == 6
    # an id that is no record is refused for every row, nothing written
    admin.post("/grid/customer/bulk/set_field", data={
        "rowid": [str(i) for i in ids], "field": "owner", "value": "999999"})
    assert sql_count(crm, f"SELECT count(*) FROM customer WHERE owner_id = :v "
                          f"AND id IN ({id_list})", v=employee) == 3
    # delete: all selected, in one go, audited
    fresh = []
    from app.state import state

    with crm.app_context():
        table = state().models.table("tag")
        for _ in range(2):
            fresh.append(state().db.session.execute(sa.insert(table).values(
                name=f"bulk-{uuid.uuid4().hex[:6]}", created_at=dt.datetime(2026, 1, 1),
                updated_at=dt.datetime(2026, 1, 1))).inserted_primary_key[0])
        state().db.session.commit()
    r = admin.post("/grid/tag/bulk/delete", data={"rowid": [str(i) for i in fresh]})
    assert r.status_code == 302
    assert sql_count(crm, f"SELECT count(*) FROM tag WHERE id IN ({fresh[0]}, {fresh[1]})") == 0
    assert sql_count(crm, f"SELECT count(*) FROM audit_log WHERE entity = 'tag' AND action = "
                          f"'delete' AND record_id IN ('{fresh[0]}', '{fresh[1]}')") == 2


def test_conditions_take_only_the_operator_of_the_fields_control(crm: Any) -> None:
    from flask_login import login_user
    from werkzeug.datastructures import MultiDict

    from app.records import records
    from app.views.grid import parse_conditions

    with crm.test_request_context("/"):
        login_user(crm.appbuilder.sm.find_user("admin"))
        service = records("customer")
        args = MultiDict([
            ("f_status", "活跃"), ("f_status", "potential"),  # repeated: a form without JS
            ("f_name__has", "科技"), ("f_name__from", "a"),    # text: contains only
            ("f_status__has", "x"), ("f_credit__from", "1,000"), ("f_credit__to", "abc"),
            ("f_nosuch", "1"), ("f_owner", "3,x,4"), ("f_created_at__to", "2026/11/23"),
            ("q", "ignored"), ("f_tags", "1"),
        ])
        found = {(c.key, c.op): c.values for c in parse_conditions(service, args)}
    assert found[("f_status", "in")] == ["active", "potential"]
    assert found[("f_name__has", "has")] == ["科技"]
    assert found[("f_owner", "in")] == [3, 4]
    assert ("f_credit__from", "from") in found and ("f_credit__to", "to") not in found
    assert ("f_tags", "in") in found
    assert not {k for k, _ in found} & {"f_name__from", "f_status__has", "f_nosuch", "q"}
    bound = found[("f_created_at__to", "to")][0]  # the next local midnight, as UTC
    assert (bound.year, bound.month, bound.day) in ((2026, 11, 23), (2026, 11, 24))
