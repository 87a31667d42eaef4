"""List, detail and edit-save pages cost a fixed number of SQL statements.

For every entity of both shipped schemas, as the admin and as a user of a
row-ruled role: the statement count of a page does not grow with the rows in
the table (10 vs 1,000), the page size (10 vs 100) or a record's children
(0 vs 50). A count that grows is an N+1 (a lazy load per row or per child) or a
full COUNT per page (see app/records/counting.py).

Rows are multiplied with Core inserts copying a record made through the form
(so every value is valid); unique text columns get a suffix.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event

from app.schema.spec import EntitySpec
from app.security.views import VERSION_FIELD
from app.state import state
from tests.conftest import CRM, LIBRARY, login
from tests.integration.test_any_schema import creation_order, form_data

PASSWORD = "Statement-Count-2024!"
LAST: dict[str, list[str]] = {}  # url -> its statements (a failure names the repeated one)
LAST_BY: dict[tuple[Any, str], list[str]] = {}
CURRENT: list[Any] = [None]  # the (who, entity) being measured


def count_statements(app: Flask, client: Any, method: str, url: str,
                     data: dict[str, Any] | None = None) -> int:
    with app.app_context():
        engine = state().db.engine
    statements: list[str] = []

    def on_execute(conn, cursor, statement, params, context, executemany):  # noqa: ANN001
        if "user_session" not in statement:  # the sign-in's last-seen touch, time-throttled
            # one text per statement kind: an IN list's length is not a new statement
            text = re.sub(r"%\(primary_keys_\d+\)s(::\w+)?(, )?", "", statement)
            statements.append(" ".join(text.split())[:800])

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        response = client.open(url, method=method, data=data)
        assert response.status_code in (200, 302), (url, response.status_code,
                                                    response.data.decode()[-1500:])
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    LAST[url] = statements
    LAST_BY[CURRENT[0], url] = statements
    return len(statements)


def make_records(app: Flask) -> dict[str, int]:
    """One record per entity through the add form (admin); return {entity: id}."""
    ids: dict[str, int] = {}
    with app.test_client() as client:
        login(client)
        with app.app_context():
            spec = state().spec
        for entity in creation_order(spec):
            response = client.post(f"/{entity.name}/add", data=form_data(entity, ids, 1))
            assert response.status_code == 302, (entity.name, response.data.decode()[-1500:])
            with app.app_context():
                model = state().models.model(entity.name)
                ids[entity.name] = state().db.session.query(sa.func.max(model.id)).scalar()
    return ids


def copy_rows(app: Flask, entity: str, source_id: int, count: int,
              overrides: dict[str, Any] | None = None) -> None:
    """Insert `count` copies of record `source_id` (unique text columns made unique)."""
    with app.app_context():
        st = state()
        table = st.models.table(entity)
        session = st.db.session
        row = dict(session.execute(sa.select(table).where(table.c.id == source_id))
                   .mappings().one())
        row.pop("id")
        row.update(overrides or {})
        unique = [c.name for c in table.columns if c.unique and c.name != "id"]
        unique += [c.name for ix in table.indexes if ix.unique for c in ix.columns]
        # a sealed unique value is unique by its blind index, made from the value itself
        unique = [name.removesuffix("__bi") for name in unique]
        rows = []
        token = uuid.uuid4().hex[:6]
        for i in range(count):
            copy = dict(row)
            for name in unique:
                if isinstance(copy.get(name), str):
                    length = getattr(table.c[name].type, "length", None) or 200
                    copy[name] = f"{i}{token}{copy[name]}"[:length]
                elif copy.get(name) is not None:
                    copy[name] = None
            rows.append(copy)
        session.execute(table.insert(), rows)
        session.commit()


def ruled_client(app: Flask) -> tuple[Any, str] | None:
    """A logged-in client of a role with a row rule (None if the schema has none)."""
    with app.app_context():
        st = state()
        role = next((r for r in st.spec.roles if r.rows), None)
        if role is None:
            return None
        sm = st.appbuilder.sm if hasattr(st, "appbuilder") else None
        from flask import current_app

        sm = sm or current_app.appbuilder.sm
        name = f"ruled_{role.name}"
        if sm.find_user(username=name) is None:
            sm.add_user(name, name, "Ruled", f"{name}@example.com", sm.find_role(role.name),
                        password=PASSWORD)
    client = app.test_client()
    login(client, name, PASSWORD)
    return client, role.name


def page_counts(app: Flask, client: Any, who: str, entity: EntitySpec,
                record_id: int) -> dict[str, int]:
    """Statements of the list (page sizes 10 and 100), detail and edit-save pages."""
    psize = f"psize_{entity.class_name}View"
    CURRENT[0] = (who, entity.name)
    if client.get(f"/{entity.name}/list/").status_code == 403:
        return {}  # the role does not read this entity
    out = {
        "list10": count_statements(app, client, "GET", f"/{entity.name}/list/?{psize}=10"),
        "list100": count_statements(app, client, "GET", f"/{entity.name}/list/?{psize}=100"),
    }
    with app.app_context():
        reachable = state().db.session.execute(sa.select(state().models.table(entity.name).c.id)
                                               .where(state().models.table(entity.name)
                                                      .c.id == record_id)).first()
    show = client.get(f"/{entity.name}/show/{record_id}")
    if reachable is not None and show.status_code == 200:
        out["show"] = count_statements(app, client, "GET", f"/{entity.name}/show/{record_id}")
    return out


def edit_save(app: Flask, client: Any, entity: EntitySpec, record_id: int,
              ids: dict[str, int]) -> int:
    with app.app_context():
        model = state().models.model(entity.name)
        version = state().db.session.get(model, record_id).version
    data = {**form_data(entity, ids, 2), VERSION_FIELD: str(version)}  # fresh unique values
    return count_statements(app, client, "POST", f"/{entity.name}/edit/{record_id}", data)


@pytest.fixture(scope="module", params=[CRM, LIBRARY], ids=["crm", "library"])
def seeded(request: pytest.FixtureRequest, app_factory: Any) -> Any:
    """A PostgreSQL app of each shipped schema, with one record per entity."""
    app = app_factory(request.param, "postgresql")
    return app, make_records(app)


def test_pages_do_not_grow_with_rows_page_size_or_children(seeded: Any) -> None:
    app, ids = seeded
    with app.app_context():
        spec = state().spec
    admin = login(app.test_client())
    ruled = ruled_client(app)
    clients = [("admin", admin)] + ([(ruled[1], ruled[0])] if ruled else [])
    before = {(who, e.name): page_counts(app, c, who, e, ids[e.name])
              for who, c in clients for e in spec.entities}
    saves_before = {e.name: edit_save(app, admin, e, ids[e.name], ids) for e in spec.entities}

    for entity in spec.entities:  # 10 -> 1,000 rows, and 50 children per parent
        copy_rows(app, entity.name, ids[entity.name], 999)
        for f_entity in spec.entities:
            for f in f_entity.fields:
                if f.to == entity.name and f.is_foreign_key and f.type != "user":
                    copy_rows(app, f_entity.name, ids[f_entity.name], 50,
                              {f.column_name: ids[entity.name]})
    for (key, url), statements in list(LAST_BY.items()):
        LAST_BY[key, "before:" + url] = statements
    after = {(who, e.name): page_counts(app, c, who, e, ids[e.name])
             for who, c in clients for e in spec.entities}
    saves_after = {e.name: edit_save(app, admin, e, ids[e.name], ids) for e in spec.entities}

    grown = list_growth(spec, before, after)
    for name, n in saves_before.items():
        if saves_after[name] > n:
            repeated = Counter(LAST[f"/{name}/edit/{ids[name]}"]).most_common(2)
            grown.append((name, "edit-save", n, saves_after[name], repeated))
    print({k: v for k, v in after.items() if k[0] == "admin"})
    assert not grown, "\n".join(map(str, grown))
    assert any("show" in c for c in after.values())


def list_growth(spec: Any, before: dict[Any, dict[str, int]],
                after: dict[Any, dict[str, int]]) -> list[Any]:
    """The list/detail pages whose statement count grew."""
    grown: list[Any] = []
    for key, counts in before.items():
        if not counts:
            continue
        url = f"/{key[1]}/list/?psize_{spec.entity(key[1]).class_name}View=100"
        extra = Counter(LAST_BY[key, url]) - Counter(LAST_BY.get((key, "before:" + url), []))
        if counts["list10"] != counts["list100"]:
            grown.append((key, "page size", counts))
        for page, n in counts.items():
            if after[key].get(page, n) > n:
                grown.append((key, page, n, after[key].get(page)))
        if after[key]["list10"] != after[key]["list100"]:
            grown.append((key, "page size", after[key], extra.most_common(2)))
    return grown
