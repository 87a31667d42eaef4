"""Statements run through the session (imports, restores) are captured row by row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app.audit.service import run_verify
from app.context import Actor, acting_as
from app.state import state
from tests.audit.conftest import entries, last_id, unique


@pytest.fixture
def ctx(crm_app: Flask) -> Iterator[Any]:
    with crm_app.app_context(), acting_as(Actor(None, "import job", "job")):
        yield state().db.session
        state().db.session.rollback()
        state().db.session.remove()


def test_bulk_insert_update_delete_give_one_entry_per_row(ctx: Any) -> None:
    session, mark = ctx, last_id()
    table = state().models.table("customer")
    names = [unique("Bulk ") for _ in range(3)]
    session.execute(sa.insert(table), [
        {"name": n, "kind": "company", "industry": "retail", "id_no": "SECRET-ID"}
        for n in names
    ])
    session.commit()
    ids = dict(session.execute(sa.select(table.c.name, table.c.id)
                               .where(table.c.name.in_(names))).all())
    session.execute(
        sa.update(table).where(table.c.id == sa.bindparam("_id"))
        .values(industry=sa.bindparam("v_industry")),
        [{"_id": ids[names[0]], "v_industry": "finance"},
         {"_id": ids[names[1]], "v_industry": "education"}],
    )
    session.execute(sa.delete(table).where(table.c.id == ids[names[2]]))
    session.commit()
    rows = entries(mark, entity="customer")
    assert [(r["action"], r["record_id"]) for r in rows] == [
        ("create", str(ids[names[0]])), ("create", str(ids[names[1]])),
        ("create", str(ids[names[2]])), ("update", str(ids[names[0]])),
        ("update", str(ids[names[1]])), ("delete", str(ids[names[2]]))]
    assert rows[0]["record_title"] == names[0]
    # customer is a data subject (subject: true): its encrypted field is logged sealed
    # under the record's own key (app/privacy), never in clear
    assert rows[0]["changes"]["id_no"]["sealed"] is True
    assert rows[0]["changes"]["id_no"]["after"].startswith("sk1:")
    assert "SECRET-ID" not in repr(rows)
    assert rows[3]["changes"] == {"industry": {"before": "retail", "after": "finance"}}
    assert {r["source"] for r in rows} == {"job"}
    assert run_verify(record=False).ok


def test_bulk_link_changes_are_one_update_per_record(ctx: Any) -> None:
    session, mark = ctx, last_id()
    models = state().models
    red, blue = (models.model("tag")(name=unique(c), color="red") for c in ("r-", "b-"))
    customer = models.model("customer")(name=unique("Links "), kind="company", points=0,
                                        tags=[red])
    session.add_all([red, blue, customer])
    session.commit()
    mark = last_id()
    assoc = models.m2m_tables[("customer", "tags")]
    left, right = list(assoc.c)
    session.execute(sa.delete(assoc).where(left == customer.id))
    session.execute(sa.insert(assoc), [{left.name: customer.id, right.name: red.id},
                                       {left.name: customer.id, right.name: blue.id}])
    session.commit()
    rows = entries(mark, entity="customer")
    assert len(rows) == 1
    assert rows[0]["changes"]["tags"]["after"] == sorted(
        [{"id": red.id, "title": red.name}, {"id": blue.id, "title": blue.name}],
        key=lambda r: r["id"])


def test_rolled_back_bulk_statements_leave_nothing(ctx: Any) -> None:
    session, mark = ctx, last_id()
    table = state().models.table("customer")
    session.execute(sa.insert(table), [{"name": unique("Gone "), "kind": "company",
                                        "points": 0}])
    session.rollback()
    assert entries(mark) == []


def test_import_job_rows_are_chained_and_verifiable(ctx: Any, tmp_path: Any) -> None:
    from app.io.importer import import_file

    mark = last_id()
    names = [unique("imp-") for _ in range(5)]
    path = tmp_path / "tags.csv"
    path.write_text("name,color\n" + "".join(f"{n},red\n" for n in names), encoding="utf-8")
    result = import_file("tag", path)
    assert result.counts()
    rows = entries(mark)
    created = [r for r in rows if r["entity"] == "tag" and r["action"] == "create"]
    assert sorted(r["record_title"] for r in created) == sorted(names)
    assert {r["source"] for r in created} == {"job"}
    assert [r["action"] for r in rows][-1] == "import"
    assert run_verify(record=False).ok


def test_orm_bulk_update_by_primary_key_and_where(ctx: Any) -> None:
    session = ctx
    model = state().models.model("tag")
    tags = [model(name=unique("pk-"), color="red") for _ in range(2)]
    session.add_all(tags)
    session.commit()
    mark = last_id()
    # with the optimistic-lock version column, a bulk update by primary key names it
    session.execute(sa.update(model), [{"id": t.id, "version": t.version, "color": "grey"}
                                       for t in tags])
    session.execute(sa.update(model).where(model.id == tags[0].id).values(color="purple"))
    session.commit()
    rows = entries(mark, entity="tag")
    assert [(r["record_id"], r["changes"]["color"]["after"]) for r in rows] == [
        (str(tags[0].id), "purple"), (str(tags[1].id), "grey")]
