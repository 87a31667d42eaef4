"""Session-level capture: every ORM change becomes a chained entry in its transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.audit import record_event
from app.context import Actor, acting_as
from app.state import state
from tests.audit.conftest import entries, last_id, unique, unique_phone


@pytest.fixture
def ctx(crm_app: Flask) -> Iterator[Any]:
    with crm_app.app_context():
        yield state().db.session
        state().db.session.rollback()
        state().db.session.remove()


def new_customer(session: Any, **values: Any) -> Any:
    customer = state().models.model("customer")(
        name=values.pop("name", unique("Cust ")), kind="company", points=0, **values
    )
    session.add(customer)
    session.commit()
    return customer


def test_create_update_delete_leave_entries_with_diffs(ctx: Any) -> None:
    session, mark = ctx, last_id()
    with acting_as(Actor(None, "cli-test", "cli")):
        # level and points are kept by the rules (rollups): plain fields here
        customer = new_customer(session, industry="retail", credit="12.50")
        cid = str(customer.id)
        customer.industry = "finance"
        customer.remark = "note"
        session.commit()
        session.delete(customer)
        session.commit()
    rows = entries(mark, entity="customer", record_id=cid)
    assert [r["action"] for r in rows] == ["create", "update", "delete"]
    create, update, delete = rows
    assert create["changes"]["industry"] == {"before": None, "after": "retail"}
    assert create["changes"]["credit"]["after"] == "12.50"
    assert create["record_title"] == customer.name
    assert update["changes"] == {"industry": {"before": "retail", "after": "finance"},
                                 "remark": {"before": None, "after": "note"}}
    assert delete["changes"]["name"] == {"before": customer.name, "after": None}
    assert {r["source"] for r in rows} == {"cli"}
    assert {r["actor_name"] for r in rows} == {"cli-test"}


def test_many_to_many_and_relation_changes_are_recorded(ctx: Any) -> None:
    session, mark = ctx, last_id()
    models = state().models
    red = models.model("tag")(name=unique("red-"), color="red")
    blue = models.model("tag")(name=unique("blue-"), color="blue")
    boss = models.model("employee")(name="Li Lei", employee_no=unique("E"))
    customer = new_customer(session, tags=[red], owner=boss)
    customer.tags.append(blue)
    customer.tags.remove(red)
    customer.owner = None
    session.commit()
    rows = entries(mark, entity="customer", record_id=str(customer.id))
    assert rows[0]["changes"]["tags"]["after"] == [{"id": red.id, "title": red.name}]
    assert rows[0]["changes"]["owner"]["after"] == {"id": boss.id, "title": "Li Lei"}
    change = rows[1]["changes"]
    assert change["tags"] == {"before": [{"id": red.id, "title": red.name}],
                              "after": [{"id": blue.id, "title": blue.name}]}
    assert change["owner"] == {"before": {"id": boss.id, "title": "Li Lei"}, "after": None}
    # Setting the foreign key column directly is seen too.
    customer.owner_id = boss.id
    session.commit()
    assert entries(mark, entity="customer", record_id=str(customer.id))[-1]["changes"]["owner"] == {
        "before": None, "after": {"id": boss.id, "title": "Li Lei"}}


def test_rolled_back_transaction_leaves_no_entry(ctx: Any) -> None:
    session = ctx
    name = unique("Rollback ")
    before = len(entries(action="create", entity="customer"))
    customer = state().models.model("customer")(name=name, kind="company", points=0)
    session.add(customer)
    session.flush()  # the change reached the database, then is rolled back
    session.rollback()
    assert len(entries(action="create", entity="customer")) == before
    assert not [r for r in entries(entity="customer") if r["record_title"] == name]
    # A failing commit (unique phone) leaves nothing either.
    phone = unique_phone()
    new_customer(session, phone=phone)
    count = len(entries())
    session.add(state().models.model("customer")(name="dup", kind="company", points=0,
                                                 phone=phone))
    with pytest.raises(sa.exc.IntegrityError):
        session.commit()
    session.rollback()
    assert len(entries()) == count


def test_savepoint_rollback_drops_only_its_changes(ctx: Any) -> None:
    session = ctx
    kept, dropped = unique("Kept "), unique("Dropped ")
    model = state().models.model("customer")
    session.add(model(name=kept, kind="company", points=0))
    session.flush()
    nested = session.begin_nested()
    session.add(model(name=dropped, kind="company", points=0))
    session.flush()
    nested.rollback()
    session.commit()
    titles = {r["record_title"] for r in entries(entity="customer", action="create")}
    assert kept in titles
    assert dropped not in titles


def test_sensitive_fields_masked_and_encrypted_never_in_plaintext(ctx: Any) -> None:
    session, mark = ctx, last_id()
    phone, secret = "13912345678", unique("ID-SECRET-")
    customer = new_customer(session, phone=unique_phone()[:3] + "00000000", id_no=secret)
    customer.phone = phone
    customer.id_no = secret + "-2"
    session.commit()
    rows = entries(mark, entity="customer", record_id=str(customer.id))
    for row in rows:
        raw = repr(row)
        assert secret not in raw
        assert phone not in raw
    # customer is a data subject (subject: true, app/privacy): its sensitive and
    # encrypted values are logged sealed under the record's own key; the audit
    # page shows them masked while the key lives
    assert rows[0]["changes"]["id_no"]["sealed"] is True
    assert rows[1]["changes"]["phone"]["sealed"] is True
    assert rows[1]["changes"]["phone"]["after"].startswith("sk1:")
    assert rows[1]["changes"]["id_no"]["sealed"] is True
    from app.audit.views import diff_rows

    shown = {r["after"] for r in diff_rows("customer", json.dumps(rows[1]["changes"]))}
    assert "139****5678" in shown and phone not in repr(shown) and secret not in repr(shown)


def test_database_cascades_are_recorded(ctx: Any) -> None:
    session, mark = ctx, last_id()
    models = state().models
    boss = models.model("employee")(name="Han Meimei", employee_no=unique("E"))
    customer = new_customer(session, owner=boss)
    contact = models.model("contact")(name="Zhang San", customer=customer)
    session.add(contact)
    session.commit()
    contact_id, customer_id = str(contact.id), str(customer.id)
    session.delete(customer)
    session.commit()
    cascaded = entries(mark, entity="contact", record_id=contact_id)[-1]
    assert cascaded["action"] == "delete"
    assert cascaded["detail"] == {"cascade_from": {"entity": "customer", "id": customer_id}}
    # set_null: deleting the owner updates the customer's owner to empty.
    other = new_customer(session, owner=boss)
    session.delete(boss)
    session.commit()
    update = entries(mark, entity="customer", record_id=str(other.id))[-1]
    assert update["action"] == "update"
    assert update["changes"]["owner"]["after"] is None


def test_record_event_joins_the_session_transaction(ctx: Any) -> None:
    session = ctx
    marker = unique("export-")
    record_event("export", entity="customer", detail={"rows": 3, "file": marker},
                 session=session)
    session.rollback()
    assert not [r for r in entries(action="export") if r["detail"].get("file") == marker]
    record_event("export", entity="customer", detail={"rows": 3, "file": marker},
                 session=session)
    session.commit()
    record_event("backup", detail={"file": marker})  # no session: its own transaction
    assert [r["detail"]["rows"] for r in entries(action="export")
            if r["detail"].get("file") == marker] == [3]
    assert [r for r in entries(action="backup") if r["detail"].get("file") == marker]


def test_user_and_role_changes_are_recorded(crm_app: Flask) -> None:
    with crm_app.app_context():
        mark = last_id()
        sm = crm_app.appbuilder.sm
        role = sm.add_role(unique("role-"))
        name = unique("user-")
        user = sm.add_user(name, "A", "B", f"{name}@example.com", role, password="Secret-123")
        user.roles.append(sm.find_role("auditor"))
        sm.update_user(user)
        created = entries(mark, entity="ab_user", record_id=str(user.id))
        assert [r["action"] for r in created] == ["create", "update"]
        assert created[0]["changes"]["password"] == {"changed": True, "encrypted": True}
        assert "Secret-123" not in repr(created)
        assert {r["title"] for r in created[1]["changes"]["roles"]["after"]} == {
            role.name, "auditor"}
        assert entries(mark, entity="ab_role", record_id=str(role.id))[0]["action"] == "create"
        state().db.session.remove()


def test_audit_entries_cannot_be_changed_through_the_session(ctx: Any) -> None:
    from flask import current_app

    session = ctx
    new_customer(session)
    entry_class = current_app.extensions["schemadesk_audit_entry"]
    item = session.get(entry_class, entries()[-1]["id"])
    item.action = "forged"
    with pytest.raises(PermissionError):
        session.commit()
    session.rollback()
    session.delete(session.get(entry_class, entries()[-1]["id"]))
    with pytest.raises(PermissionError):
        session.commit()
