"""A list page costs the same number of SQL statements for 10 and 100 rows."""

from __future__ import annotations

import uuid

from flask import Flask
from sqlalchemy import event

from app.state import state


def seed_customers(app: Flask, count: int) -> None:
    with app.app_context():
        st = state()
        session = st.db.session
        Employee = st.models.model("employee")
        Tag = st.models.model("tag")
        Customer = st.models.model("customer")
        owners = [Employee(name=f"员工{i}", employee_no=uuid.uuid4().hex[:10]) for i in range(5)]
        tags = [Tag(name=f"tag-{uuid.uuid4().hex[:8]}") for _ in range(3)]
        session.add_all(owners + tags)
        for i in range(count):
            session.add(
                Customer(
                    name=f"客户{i}", kind="company", owner=owners[i % 5], tags=tags[: i % 3 + 1]
                )
            )
        session.commit()


def count_statements(app: Flask, client, url: str) -> int:
    engine = state_engine(app)
    statements: list[str] = []

    def on_execute(conn, cursor, statement, params, context, executemany):  # noqa: ANN001
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        response = client.get(url)
        assert response.status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    return len(statements)


def state_engine(app: Flask):  # noqa: ANN201
    with app.app_context():
        return state().db.engine


def test_list_page_queries_do_not_grow_with_page_size(crm_app: Flask, admin_client) -> None:
    seed_customers(crm_app, 120)
    small = count_statements(crm_app, admin_client, "/customer/list/?psize_CustomerView=10")
    large = count_statements(crm_app, admin_client, "/customer/list/?psize_CustomerView=100")
    page = admin_client.get("/customer/list/?psize_CustomerView=100").data.decode()
    assert page.count("客户") >= 100
    assert small == large, (small, large)
    print(f"queries per list page: {large}")
