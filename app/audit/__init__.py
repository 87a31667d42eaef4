"""Tamper-evident audit log: change capture, hash chain, verification, views.

Other services record their own events (imports, exports, backups, restores,
schema applies, logins) with `record_event`; entity changes are captured by the
session events in `app.audit.capture` without any call.
"""

from __future__ import annotations

from typing import Any


def record_event(
    action: str,
    entity: str | None = None,
    record_id: Any = None,
    title: str | None = None,
    detail: dict | None = None,
    session: Any = None,
) -> None:
    """Append an audit entry for `action` (e.g. 'import', 'export', 'backup').

    With `session` (a SQLAlchemy Session in a transaction), the entry is written
    in that session's transaction when it commits, so it disappears with a
    rollback. Without one, it is written and committed at once in a transaction
    of its own. The actor (user, source, IP, request id) is `current_actor()`.
    `detail` must be JSON-serialisable (counts, file names, parameters).
    """
    from app.audit.capture import record_event as _record_event

    _record_event(action, entity=entity, record_id=record_id, title=title,
                  detail=detail, session=session)


def init_app(app: Any, appbuilder: Any) -> None:
    """Init hook: capture changes and sign-ins, and add the auditor's workspace."""
    from app.audit import auth, capture, service, views
    from app.state import state

    capture.install(app, state(), appbuilder.sm)
    auth.install(app, appbuilder.sm)
    views.register(appbuilder)
    service.register_job_kind()
