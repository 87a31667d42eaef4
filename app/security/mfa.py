"""Two-factor sign-in (两步验证): TOTP codes (pyotp) and one-time recovery codes.

A login's second factor lives in `user_mfa`: the TOTP secret encrypted with the
field keys (app/security/encryption.py), `enabled_at` once the user confirmed a
code (a row without it is an enrolment in progress), `last_step` — the last
TOTP time step accepted, so the same code cannot be used twice within its
window — and `recovery`, a JSON list of hashes of the ten recovery codes (a used
one becomes null).

Sign-in: after the password (`password_accepted`, called by the security
manager) a user who has enrolled, or whose role says `mfa: required`, is signed
in only half: `session[PENDING_KEY]` holds "verify" or "enrol" and the gate
(`init_mfa`) lets such a browser reach nothing but the second step (or the
enrolment), the language switch and logout. The API login asks for the code in
the same request (`"totp"`). Wrong codes count as failed sign-ins
(app/security/login_limit.py), so they are rate-limited with the password.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pyotp
import sqlalchemy as sa
from flask import (
    Flask,
    Response,
    current_app,
    g,
    has_request_context,
    jsonify,
    redirect,
    request,
    session,
    url_for,
)
from flask_login import user_logged_in, user_logged_out
from werkzeug.security import check_password_hash, generate_password_hash

from app.i18n import N_, gettext
from app.models import utcnow
from app.security.encryption import decrypt, encrypt
from app.state import state

PENDING_KEY = "_sd_mfa"  # "verify" | "enrol": password accepted, second step to go
NEXT_KEY = "_sd_mfa_next"
STEP_SECONDS = 30
VALID_WINDOW = 1  # accept the previous and the next step too (clock drift)
RECOVERY_COUNT = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
# Recovery codes carry 50 random bits: a fast salted hash is enough, and ten
# checks of werkzeug's default scrypt would hold a sign-in for a second.
RECOVERY_HASH = "pbkdf2:sha256:20000"


def _table() -> sa.Table:
    return state().models.system["user_mfa"]


def _row(user_id: int) -> Any:
    table = _table()
    with state().db.engine.connect() as conn:
        return conn.execute(sa.select(table).where(table.c.user_id == user_id)).first()


def required_roles() -> set[str]:
    """Names of the YAML roles whose members must use a second factor (`mfa: required`)."""
    return {role.name for role in state().spec.roles if role.mfa == "required"}


def required_for(user: Any) -> bool:
    """Whether one of `user`'s roles requires two-factor sign-in."""
    names = {role.name for role in getattr(user, "roles", None) or ()}
    return bool(names & required_roles())


def is_enrolled(user_id: int) -> bool:
    """Whether `user_id` has a confirmed second factor."""
    row = _row(user_id)
    return row is not None and row.enabled_at is not None


def second_step(user: Any) -> str | None:
    """What `user` must do after the password: "verify", "enrol" or nothing (None)."""
    if is_enrolled(user.id):
        return "verify"
    return "enrol" if required_for(user) else None


# -- enrolment ---------------------------------------------------------------


def start_enrolment(user_id: int) -> str:
    """Return the secret of `user_id`'s enrolment in progress (a new one if none).

    An unconfirmed secret is kept across page loads, so reloading the page
    does not invalidate the QR code the user has just scanned.
    """
    row = _row(user_id)
    if row is not None and row.enabled_at is None:
        return decrypt(row.secret)
    if row is not None:
        raise ValueError("already enrolled")
    secret = pyotp.random_base32()
    with state().db.engine.begin() as conn:
        conn.execute(sa.insert(_table()).values(
            user_id=user_id, secret=encrypt(secret), created_at=utcnow()))
    return secret


def provisioning_uri(secret: str, username: str) -> str:
    """Return the otpauth:// URI an authenticator app reads from the QR code."""
    issuer = str(current_app.config.get("APP_NAME") or "SchemaDesk")
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """Return the QR code of `uri` as an SVG data URI, made here (no outside service)."""
    import segno

    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def confirm_enrolment(user_id: int, code: str) -> list[str] | None:
    """Switch the second factor on if `code` matches the pending secret; return recovery codes."""
    row = _row(user_id)
    if row is None or row.enabled_at is not None:
        return None
    step = _matching_step(decrypt(row.secret), code, None)
    if step is None:
        return None
    codes = _new_codes()
    table = _table()
    with state().db.engine.begin() as conn:
        done = conn.execute(
            sa.update(table).where(table.c.user_id == user_id, table.c.enabled_at.is_(None))
            .values(enabled_at=utcnow(), last_step=step, recovery=_hashes(codes))
        ).rowcount
    return codes if done == 1 else None


def regenerate_recovery_codes(user_id: int) -> list[str]:
    """Replace `user_id`'s recovery codes with ten new ones; return them (shown once)."""
    codes = _new_codes()
    table = _table()
    with state().db.engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.user_id == user_id)
                     .values(recovery=_hashes(codes)))
    return codes


def disable(user_id: int) -> None:
    """Remove `user_id`'s second factor (secret and recovery codes)."""
    table = _table()
    with state().db.engine.begin() as conn:
        conn.execute(sa.delete(table).where(table.c.user_id == user_id))


def rotate_secrets() -> int:
    """Re-encrypt every TOTP secret with the newest field key (`schemadesk keys rotate`)."""
    from app.security.encryption import cipher

    table = _table()
    multi = cipher()
    with state().db.engine.begin() as conn:
        rows = conn.execute(sa.select(table.c.id, table.c.secret)).all()
        for row in rows:
            conn.execute(sa.update(table).where(table.c.id == row.id).values(
                secret=multi.rotate(row.secret.encode("ascii")).decode("ascii")))
    return len(rows)


def recovery_left(user_id: int) -> int:
    """How many unused recovery codes `user_id` has."""
    row = _row(user_id)
    if row is None or not row.recovery:
        return 0
    return sum(1 for h in json.loads(row.recovery) if h)


# -- checking codes ----------------------------------------------------------


def _normalise(code: Any) -> str:
    return "".join(str(code or "").split()).replace("-", "").lower()


def _matching_step(secret: str, code: str, last_step: int | None) -> int | None:
    """Return the time step `code` belongs to (within the window, after `last_step`)."""
    code = _normalise(code)
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now_step = int(time.time()) // STEP_SECONDS
    for step in range(now_step - VALID_WINDOW, now_step + VALID_WINDOW + 1):
        if last_step is not None and step <= last_step:
            continue  # that code (or an older one) was used already: no replay
        if secrets.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def _new_codes() -> list[str]:
    def one() -> str:
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))
        return f"{raw[:5]}-{raw[5:]}"

    return [one() for _ in range(RECOVERY_COUNT)]


def _hashes(codes: list[str]) -> str:
    return json.dumps([generate_password_hash(_normalise(c), method=RECOVERY_HASH)
                       for c in codes])


def _use_totp(row: Any, code: str) -> bool:
    step = _matching_step(decrypt(row.secret), code, row.last_step)
    if step is None:
        return False
    table = _table()
    with state().db.engine.begin() as conn:
        # Two requests with the same code: only the one that moves last_step wins.
        done = conn.execute(
            sa.update(table)
            .where(table.c.user_id == row.user_id,
                   sa.or_(table.c.last_step.is_(None), table.c.last_step < step))
            .values(last_step=step)
        ).rowcount
    return done == 1


def _use_recovery(row: Any, code: str) -> bool:
    code = _normalise(code)
    if len(code) != 10 or not row.recovery:
        return False
    hashes = json.loads(row.recovery)
    for i, hashed in enumerate(hashes):
        if hashed and check_password_hash(hashed, code):
            hashes[i] = None
            table = _table()
            with state().db.engine.begin() as conn:
                done = conn.execute(
                    sa.update(table)
                    .where(table.c.user_id == row.user_id, table.c.recovery == row.recovery)
                    .values(recovery=json.dumps(hashes))
                ).rowcount
            return done == 1
    return False


def check_code(user_id: int, code: str, recovery: bool = True) -> str | None:
    """Use `code` for `user_id`: return "totp" or "recovery" if accepted, else None.

    An accepted TOTP code moves `last_step`, so it (and any older one) cannot
    be used again; an accepted recovery code is struck off.
    """
    row = _row(user_id)
    if row is None or row.enabled_at is None or not _normalise(code):
        return None
    if _use_totp(row, code):
        return "totp"
    if recovery and _use_recovery(row, code):
        return "recovery"
    return None


# -- the sign-in -------------------------------------------------------------


def password_accepted(user: Any) -> None:
    """Security manager hook: the password was right; note what second step is due."""
    if has_request_context() and user is not None:
        g.sd_mfa_pending = second_step(user)


def complete_sign_in(user: Any, method: str) -> str:
    """The second step is done: the session is fully signed in; return where to go."""
    from app.security.login_log import record_auth_event

    session.pop(PENDING_KEY, None)
    record_auth_event("login", user, {"mfa": method})
    return session.pop(NEXT_KEY, None) or current_app.appbuilder.get_url_for_index


def api_refusal(user: Any, code: str) -> str | None:
    """For the API login: None if `user` may have a token, else the (translated) reason.

    Wrong or missing codes are failed sign-ins (audited, rate-limited).
    """
    from app.security.login_limit import record_failed_login
    from app.security.login_log import record_auth_event

    stage = g.pop("sd_mfa_pending", None)
    if stage is None:
        return None  # app/audit/auth.py wrote the "login" entry
    if stage == "enrol":
        reason, message = "not_enrolled", N_(
            "Your role requires two-factor sign-in. Set it up in the web console first.")
    elif not _normalise(code):
        reason, message = "code_missing", N_(
            "A two-factor code is needed: send the 6-digit code from your authenticator "
            "app (or a recovery code) as \"totp\".")
    else:
        method = check_code(user.id, code)
        if method is not None:
            record_auth_event("login", user, {"via": "api", "mfa": method})
            return None
        reason, message = "wrong_code", N_("The two-factor code is wrong or was used already.")
    record_auth_event("login_failed", None, {"username": user.username, "reason": reason})
    record_failed_login(user.username)
    return gettext(message)


def _allowed_endpoints(stage: str) -> set[str]:
    sm = current_app.appbuilder.sm
    allowed = {f"{sm.auth_view.endpoint}.logout", "LocaleView.index", "static",
               "appbuilder.static"}
    allowed |= {"MfaView.verify"} if stage == "verify" else {"MfaView.enrol", "MfaView.confirm"}
    return allowed


def _hold_half_signed_in() -> Response | None:
    """Before each request: a half signed-in browser reaches only the second step."""
    stage = session.get(PENDING_KEY)
    if not stage or "_user_id" not in session:
        return None
    if request.endpoint in _allowed_endpoints(stage) or request.path.startswith("/static"):
        return None
    if request.path.startswith("/api/"):
        response = jsonify(message=gettext(N_("Finish signing in with your two-factor code.")))
        response.status_code = 401
        return response
    target = "MfaView.verify" if stage == "verify" else "MfaView.enrol"
    return redirect(url_for(target))


def init_mfa(app: Flask, appbuilder: Any) -> None:
    """Init hook: the half-signed-in gate, the pages, and the flags set at sign-in."""
    from app.security.mfa_views import MfaView

    def on_login(sender: Any, user: Any = None, **_: Any) -> None:
        stage = g.get("sd_mfa_pending")
        if stage:
            session[PENDING_KEY] = stage
            from flask_appbuilder.utils.base import get_safe_redirect

            if request.args.get("next"):
                session[NEXT_KEY] = get_safe_redirect(request.args["next"])

    def on_logout(sender: Any, **_: Any) -> None:
        session.pop(PENDING_KEY, None)
        session.pop(NEXT_KEY, None)

    user_logged_in.connect(on_login, sender=app, weak=False)
    user_logged_out.connect(on_logout, sender=app, weak=False)
    app.before_request(_hold_half_signed_in)
    appbuilder.add_view_no_menu(MfaView())

