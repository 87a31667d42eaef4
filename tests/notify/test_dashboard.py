"""The dashboard's due list follows the declared reminders and leaves finished records out."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import Flask

from app.state import state
from tests.conftest import login
from tests.notify.conftest import add_record, make_person, unique


def test_dashboard_lists_open_requests_past_their_sla_only(crm_app: Flask) -> None:
    owner = make_person(crm_app, "operator")
    customer = add_record(crm_app, "customer",
                          {"name": unique("C "), "owner": owner["employee_id"]})
    late_open = unique("Late open ")
    late_done = unique("Late resolved ")
    fresh = unique("Fresh ")
    ids = {title: add_record(crm_app, "service_request", {"title": title, "customer": customer})
           for title in (late_open, late_done, fresh)}
    with crm_app.app_context():
        table = state().models.table("service_request")
        two_days_ago = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=2)
        with state().db.engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.id.in_([ids[late_open], ids[late_done]]))
                         .values(created_at=two_days_ago))
            conn.execute(sa.update(table).where(table.c.id == ids[late_done])
                         .values(status="resolved"))
        from app.notify.dashboard import dashboard_reminders

        fields = [(f.name, shift) for f, _w, shift in
                  dashboard_reminders(state().spec.entity("service_request"))]
        assert fields == [("created_at", dt.timedelta(hours=24))]
    with crm_app.test_client() as client:
        page = login(client).get("/dashboard/").get_data(as_text=True)
    assert late_open in page
    assert late_done not in page  # resolved: the rule's `when` leaves it out
    assert fresh not in page  # not yet 24 hours old
