"""Reading notifications: the reader's language, the text, the link, unread counts.

A notification row stores an msgid and plain params; the text is made here,
when it is read, in the reader's language. When the row names a record
(`entity`, `record_id`), its title is filled in as `%(record)s` and a link is
offered, but only if the reader may still read that record (asked of the
record service, as for any other read).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _gettext

from app.i18n import N_, SUPPORTED_LOCALES
from app.models import utcnow

SUBJECT = N_("[%(app)s] %(text)s")
OPEN_RECORD = N_("Open: %(url)s")


def _tables() -> dict[str, sa.Table]:
    from app.state import state

    return state().models.system


def _session() -> Any:
    from app.state import state

    return state().db.session


def stored_language(user_id: int) -> str | None:
    """The language the user last chose at /lang, or None."""
    table = _tables()["user_pref"]
    lang = _session().execute(
        sa.select(table.c.lang).where(table.c.user_id == user_id)).scalar()
    return lang if lang in SUPPORTED_LOCALES else None


def user_language(user_id: int | None) -> str:
    """The language the user last chose (/lang), else the schema's default_locale."""
    from app.state import state

    if user_id is not None:
        lang = stored_language(user_id)
        if lang:
            return lang
    default = state().spec.default_locale or "en"
    return "zh" if default.lower().startswith("zh") else "en"


def remember_language(user_id: int, lang: str) -> None:
    """Store the user's language choice (called when they pick one at /lang)."""
    if lang not in SUPPORTED_LOCALES:
        return
    table = _tables()["user_pref"]
    session = _session()
    done = session.execute(sa.update(table).where(table.c.user_id == user_id)
                           .values(lang=lang, updated_at=utcnow())).rowcount
    if not done:
        session.execute(sa.insert(table).values(user_id=user_id, lang=lang, updated_at=utcnow()))
    session.commit()


class _Params(dict):
    """Params that leave an unknown placeholder visible instead of failing."""

    def __missing__(self, key: str) -> str:
        return f"%({key})s"


def _user(user_id: int) -> Any:
    return current_app.appbuilder.sm.get_user_by_id(user_id)  # type: ignore[attr-defined]


def readable_records(user: Any, rows: list[Mapping[str, Any]]) -> dict[tuple[str, int], Any]:
    """The records the rows name that `user` may still read: one query per entity."""
    from app.records.service import RecordError, records
    from app.state import state

    wanted: dict[str, set[int]] = {}
    names = {e.name for e in state().spec.entities}
    for row in rows:
        if row.get("entity") in names and row.get("record_id") is not None:
            wanted.setdefault(row["entity"], set()).add(int(row["record_id"]))
    found: dict[tuple[str, int], Any] = {}
    if user is None:
        return found
    for entity, ids in wanted.items():
        try:
            service = records(entity, user)
            objs = service.query().filter(service.model.id.in_(sorted(ids))).all()
        except RecordError:
            continue
        found.update({(entity, obj.id): obj for obj in objs})
    return found


def notification_text(row: Mapping[str, Any], lang: str, record: Any = None) -> str:
    """The text of a notification in `lang` (its msgid translated, params filled in)."""
    params = _Params({k: _in_language(v, lang)
                      for k, v in json.loads(row["params"] or "{}").items()})
    if row.get("entity"):
        params.setdefault("record", str(record) if record is not None
                          else f"#{row.get('record_id')}")
    text = params.pop("_text", None)  # a schema label (en/zh) instead of an msgid
    with force_locale("zh_CN" if lang == "zh" else "en"):
        template = text if isinstance(text, str) and text else _gettext(row["message"])
    try:
        return template % params
    except (TypeError, ValueError):
        return template


def _in_language(value: Any, lang: str) -> Any:
    """A param given in both languages ({en, zh}: a field label) in the reader's."""
    if isinstance(value, dict) and set(value) <= {"en", "zh"} and value:
        return value.get(lang) or value.get("en") or value.get("zh")
    return value


def record_path(entity: str, record_id: Any) -> str:
    """The detail page of a record (relative URL)."""
    return f"/{entity}/show/{record_id}"


def render_notification(row: Mapping[str, Any], lang: str,
                        for_mail: bool = False) -> tuple[str, str]:
    """(subject, body) of a notification for its recipient, in `lang`.

    The link is absolute when PUBLIC_URL is set (e-mail readers need it).
    """
    found = readable_records(_user(row["user_id"]), [row])
    record = found.get((row.get("entity") or "", int(row.get("record_id") or 0)))
    text = notification_text(row, lang, record)
    body = text
    if record is not None:
        base = (current_app.config.get("PUBLIC_URL") or os.environ.get("PUBLIC_URL") or "")
        url = base.rstrip("/") + record_path(row["entity"], row["record_id"])
        with force_locale("zh_CN" if lang == "zh" else "en"):
            body = text + "\n\n" + _gettext(OPEN_RECORD) % {"url": url}
    if not for_mail:
        return text, body
    from app.state import state

    app_name = state().spec.title.get(lang) or "SchemaDesk"
    with force_locale("zh_CN" if lang == "zh" else "en"):
        subject = _gettext(SUBJECT) % {"app": app_name, "text": text.splitlines()[0][:150]}
    return subject, body


def unread_count(user_id: int) -> int:
    """How many unread notifications the user has (one indexed COUNT)."""
    table = _tables()["notification"]
    return int(_session().execute(
        sa.select(sa.func.count()).select_from(table)
        .where(table.c.user_id == user_id).where(table.c.read_at.is_(None))).scalar() or 0)
