"""The user form links an account to its record (员工档案) in any entity with a `user` field.

Schemas keep people in an entity of their own (the CRM's `employee`, the
library's `staff`) whose `user` field points to the sign-in account; `$me` row
rules follow that link. So an admin creating or editing an account picks the
record right there. The write goes through the record service (the admin's
grants, validation, audit), like any other edit of that record.
"""

from __future__ import annotations

from typing import Any

from flask import flash, g
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_babel import LazyString
from wtforms import SelectField

from app.i18n import N_, current_lang, gettext

FIELD_PREFIX = "sd_link_"


def account_entities() -> list[tuple[Any, Any]]:
    """(entity, its user field) for every entity of the schema with a `user`-type field."""
    from app.state import state

    out = []
    for entity in state().spec.entities:
        user_field = entity.user_field
        if user_field is not None:
            out.append((entity, user_field))
    return out


def _choices(entity_name: str) -> Any:
    """The records an admin can link, as (id, title) — read through the record service."""

    def choices() -> list[tuple[str, str]]:
        from app.records import records

        svc = records(entity_name)
        if not svc.can("update"):
            return [("", "—")]
        rows = svc.query().order_by(svc.model.id).limit(2000).all()
        return [("", "—")] + [(str(r.id), _title(svc, r)) for r in rows]

    return choices


def _title(svc: Any, obj: Any) -> str:
    title_field = getattr(svc.entity, "title", None) or "id"
    return str(getattr(obj, title_field, None) or f"#{obj.id}")


def link_form_fields() -> dict[str, SelectField]:
    """One picker per account entity, labelled "Linked <entity label>"."""
    fields = {}
    for entity, _field in account_entities():
        fields[FIELD_PREFIX + entity.name] = SelectField(
            _lazy(N_("Linked record: %(entity)s"), entity.label),
            choices=_choices(entity.name),
            validate_choice=False,
            widget=Select2Widget(),  # the same picker as the roles above it
            description=_lazy(N_("The %(entity)s record of this person: row rules with $me "
                                 "follow it."), entity.label),
        )
    return fields


def _lazy(msgid: str, label: Any) -> LazyString:
    """Translated when shown (the form is built once per app, read in many languages)."""
    return LazyString(lambda: gettext(msgid, entity=label.get(current_lang())))


def linked_id(user_id: int, entity_name: str) -> int | None:
    """The id of the record of `entity_name` whose user field is `user_id`."""
    from app.state import state

    st = state()
    entity = st.spec.entity(entity_name)
    column = st.models.model(entity_name).__table__.c[entity.user_field.column_name]
    with st.db.engine.connect() as conn:
        import sqlalchemy as sa

        return conn.execute(sa.select(column.table.c.id).where(column == user_id).limit(1)
                            ).scalar()


def remember_links(form: Any) -> None:
    """Keep the picked records for after the user is saved (FAB's process_form hook)."""
    g.sd_user_links = {name[len(FIELD_PREFIX):]: form[name].data
                       for name in form.data if name.startswith(FIELD_PREFIX)}


def prefill_links(form: Any, user_id: int) -> None:
    for entity, _field in account_entities():
        name = FIELD_PREFIX + entity.name
        if name in form:
            current = linked_id(user_id, entity.name)
            form[name].data = str(current) if current is not None else ""


def save_links(user: Any) -> None:
    """Point each picked record's user field at `user` (and unlink the one it replaces)."""
    from app.records import RecordError, records

    for entity_name, picked in (getattr(g, "sd_user_links", None) or {}).items():
        user_field = next(f for e, f in account_entities() if e.name == entity_name)
        current = linked_id(user.id, entity_name)
        target = int(picked) if picked else None
        if current == target:
            continue
        svc = records(entity_name)
        try:
            if current is not None:
                svc.update(svc.get(current, "update"), {user_field.name: None})
            if target is not None:
                svc.update(svc.get(target, "update"), {user_field.name: user.id})
        except RecordError as exc:
            flash(gettext(N_("The account was saved, but linking the record failed: "
                             "%(error)s"), error=getattr(exc, "message", str(exc))), "warning")


class UserLinkMixin:
    """Adds the record pickers to FAB's user add/edit forms (see the module doc)."""

    def __init__(self, **kwargs: Any) -> None:
        links = link_form_fields()
        base_add = [c for c in self.add_columns if not c.startswith(FIELD_PREFIX)]
        base_edit = [c for c in self.edit_columns if not c.startswith(FIELD_PREFIX)]
        self.add_form_extra_fields = {**(self.add_form_extra_fields or {}), **links}
        self.edit_form_extra_fields = {**(self.edit_form_extra_fields or {}), **links}
        self.add_columns = [*base_add, *links]
        self.edit_columns = [*base_edit, *links]
        super().__init__(**kwargs)

    def process_form(self, form: Any, is_created: bool) -> None:
        remember_links(form)
        for name in list(form.data):
            if name.startswith(FIELD_PREFIX):
                del form[name]  # not a column of ab_user: populate_obj must not see it
        super().process_form(form, is_created)  # type: ignore[misc]

    def prefill_form(self, form: Any, pk: Any) -> None:
        super().prefill_form(form, pk)  # type: ignore[misc]
        prefill_links(form, int(pk))

    def post_add(self, item: Any) -> None:
        super().post_add(item)  # type: ignore[misc]
        save_links(item)

    def post_update(self, item: Any) -> None:
        super().post_update(item)  # type: ignore[misc]
        save_links(item)
