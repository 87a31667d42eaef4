"""Schema versions in the database (架构版本): plan, guarded apply, history, re-apply.

The schema every process serves is the newest row of `schema_version`; the
SCHEMA_PATH file only seeds version 1. A change is one YAML text: it is checked,
planned in words (destructive steps need the entity or field name typed as a
confirmation), then applied through the same guarded path as `schemadesk schema
apply` (backup, migration in the instance's own migrations folder, role sync,
audit) inside an app built for the new text. Every process notices the new
number within a second or two and rebuilds (app/designer/reload.py).
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from app.i18n import N_, gettext
from app.schema.problems import Problem, SchemaError
from app.schema.spec import AppSpec

log = logging.getLogger(__name__)
AUDIT_DIFF_LIMIT = 20000


@dataclass(frozen=True)
class SchemaVersion:
    """One applied version of the schema."""

    id: int
    number: int
    yaml_text: str
    digest: str
    author: str | None
    created_at: datetime
    comment: str | None
    revision: str | None
    backup_file: str | None = None


@dataclass(frozen=True)
class Step:
    """One change to the database in words; a destructive one names what must be typed."""

    text: str
    destructive: bool = False
    confirm: str | None = None


@dataclass
class ChangePlan:
    """What applying a YAML text would do: its problems, the steps in words, the text diff."""

    problems: list[Problem] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    diff: str = ""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def confirmations(self) -> list[str]:
        """The names the admin must type before the destructive steps run."""
        return sorted({s.confirm for s in self.steps if s.destructive and s.confirm})

    def missing(self, confirmations: Iterable[str]) -> list[str]:
        given = {c.strip() for c in confirmations}
        return [name for name in self.confirmations if name not in given]


class ChangeRefused(Exception):  # noqa: N818 - the name says what happened
    """The change was not applied: schema problems or a missing confirmation."""

    def __init__(self, plan: ChangePlan, message: str) -> None:
        super().__init__(message)
        self.plan = plan
        self.message = message


class ChangeFailed(Exception):  # noqa: N818
    """The migration failed; the database is as before and the backup is kept."""

    def __init__(self, report: list[str], backup: str | None) -> None:
        super().__init__("\n".join(report))
        self.report = report
        self.backup = backup


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- start-up: which schema a new app serves ---------------------------------------


def startup_spec(settings: dict[str, Any]) -> tuple[AppSpec, str, int | None]:
    """Return the spec an app is built on, its text and its version number.

    SCHEMA_TEXT (set when building an app for a candidate version) wins; then the
    newest stored version; then the SCHEMA_PATH file (first start, or
    SCHEMA_FROM_DATABASE off).
    """
    from app.schema.loader import load_spec

    path = settings["SCHEMA_PATH"]
    if settings.get("SCHEMA_TEXT"):
        text = settings["SCHEMA_TEXT"]
        return _checked(text, path, settings["INSTANCE_PATH"]), text, settings.get("SCHEMA_NUMBER")
    if _from_database(settings):
        rows = _stored_digests(settings["SQLALCHEMY_DATABASE_URI"])
        if rows:
            number, text = rows[0][0], rows[0][2]
            _warn_if_file_changed(path, {digest for _n, digest, _t in rows}, number)
            return _checked(text, path, settings["INSTANCE_PATH"]), text, number
    spec = load_spec(path)
    return spec, Path(path).read_text(encoding="utf-8"), None


def _from_database(settings: dict[str, Any]) -> bool:
    value = settings.get("SCHEMA_FROM_DATABASE", os.environ.get("SCHEMA_FROM_DATABASE", True))
    return str(value).lower() not in ("0", "false", "no", "off", "")


def _checked(text: str, path: str, instance: str | None = None) -> AppSpec:
    spec, problems = checked_spec(text, path, instance)
    if spec is None:
        raise SchemaError(problems)
    return spec


def checked_spec(text: str, path: str, instance: str | None = None, *, read: bool = True
                 ) -> tuple[AppSpec | None, list[Problem]]:
    """check_text, with the spec of a valid text cached in `<instance>/cache/specs/`.

    Parsing a schema with comments (ruamel's round-trip loader) is most of an
    app build; after an apply every process of the node builds the same text,
    so the applying process's parse is reused. The key covers the text, its
    file name and the checker's source, so a code change never reads a stale spec.
    A cached spec comes without its warnings: `read=False` when they are shown.
    """
    import pickle

    from app.schema.loader import check_text

    cache = Path(instance) / "cache" / "specs" / f"{_cache_key(text, path)}.pickle" if (
        instance) else None
    if read and cache is not None and cache.is_file():
        try:
            return pickle.loads(cache.read_bytes()), []  # noqa: S301 - our own instance file
        except Exception:  # noqa: BLE001 - a broken cache file is parsed again
            log.debug("spec cache %s unreadable", cache, exc_info=True)
    spec, problems = check_text(text, path)
    if spec is not None and cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            partial = cache.with_suffix(f".{os.getpid()}.tmp")
            partial.write_bytes(pickle.dumps(spec))
            partial.replace(cache)
        except OSError:
            log.debug("spec cache %s not written", cache, exc_info=True)
    return spec, problems


_CODE_DIGEST: list[str] = []


def _cache_key(text: str, path: str) -> str:
    if not _CODE_DIGEST:
        code = hashlib.sha256()
        for source in sorted((Path(__file__).resolve().parent.parent / "schema").glob("*.py")):
            code.update(source.read_bytes())
        _CODE_DIGEST.append(code.hexdigest())
    return hashlib.sha256(f"{_CODE_DIGEST[0]}\0{path}\0{text}".encode()).hexdigest()[:40]


def _stored_digests(url: str) -> list[tuple[int, str, str | None]]:
    """(number, digest, text of the newest only) of every stored version; [] if none or no table."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT number, digest FROM schema_version ORDER BY number DESC")).all()
            if not rows:
                return []
            newest = conn.execute(sa.text("SELECT yaml_text FROM schema_version WHERE number = :n"),
                                  {"n": rows[0][0]}).scalar_one()
    except sa.exc.SQLAlchemyError:
        return []  # not migrated yet (or unreachable: the app's own guard says so)
    finally:
        engine.dispose()
    return [(rows[0][0], rows[0][1], newest)] + [(n, d, None) for n, d in rows[1:]]


def _warn_if_file_changed(path: str, digests: set[str], number: int) -> None:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return
    if digest_of(text) not in digests:
        log.warning(
            "The schema file %s differs from every stored version; the console serves version "
            "%s from the database. To use the file, import it as a new version: "
            "`schemadesk schema apply` (or paste it in the designer).", path, number)


def latest_number(engine: sa.Engine) -> int | None:
    """The newest version number (one cheap statement); None without versions or table."""
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT max(number) FROM schema_version")).scalar()
    except sa.exc.SQLAlchemyError:
        return None


# --- reading versions ----------------------------------------------------------


def _table() -> sa.Table:
    from app.state import state

    return state().models.metadata.tables["schema_version"]


def _row_to_version(row: Any) -> SchemaVersion:
    return SchemaVersion(
        id=row.id, number=row.number, yaml_text=row.yaml_text, digest=row.digest,
        author=row.author, created_at=row.created_at, comment=row.comment,
        revision=row.revision, backup_file=row.backup_file,
    )


def seed_version(author: str = "system") -> SchemaVersion | None:
    """Store the running schema as version 1 if there are no versions yet (first start).

    Returns None when the table does not exist yet (database not migrated).
    """
    from app.state import state

    st = state()
    table = _table()
    try:
        with st.db.engine.begin() as conn:
            row = conn.execute(sa.select(table).order_by(table.c.number.desc()).limit(1)).first()
            if row is None:
                text = st.schema_text or Path(st.spec.source).read_text(encoding="utf-8")
                conn.execute(table.insert().values(
                    number=1, yaml_text=text, digest=digest_of(text), author=author,
                    created_at=_now(), comment=gettext(N_("Imported from the schema file")),
                ))
                row = conn.execute(sa.select(table).where(table.c.number == 1)).first()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return None
    except sa.exc.IntegrityError:  # another process seeded it at the same moment
        with st.db.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.number == 1)).first()
    version = _row_to_version(row)
    if st.schema_number is None and version.digest == digest_of(st.schema_text):
        st.schema_number = version.number
    return version


def current_version() -> SchemaVersion:
    """The newest version (the file is stored as version 1 on first use)."""
    table = _table()
    from app.state import state

    with state().db.engine.connect() as conn:
        row = conn.execute(sa.select(table).order_by(table.c.number.desc()).limit(1)).first()
    if row is None:
        version = seed_version()
        if version is None:
            raise RuntimeError("schema_version table missing: run `schemadesk db upgrade`")
        return version
    return _row_to_version(row)


def list_versions() -> list[SchemaVersion]:
    """Every version, newest first."""
    from app.state import state

    current_version()  # seeds version 1 on first use
    table = _table()
    with state().db.engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.number.desc())).all()
    return [_row_to_version(r) for r in rows]


def get_version(version_id: int) -> SchemaVersion | None:
    from app.state import state

    table = _table()
    with state().db.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == int(version_id))).first()
    return _row_to_version(row) if row is not None else None


def text_diff(old: str, new: str, old_name: str = "current", new_name: str = "new") -> str:
    """Unified diff of two YAML texts."""
    return "".join(difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True),
        fromfile=old_name, tofile=new_name))


def compare_versions(old_id: int, new_id: int) -> str:
    """Unified diff between two stored versions (older first), labelled vN."""
    old, new = get_version(old_id), get_version(new_id)
    if old is None or new is None:
        raise ChangeRefused(ChangePlan(), gettext(N_("No such schema version.")))
    return text_diff(old.yaml_text, new.yaml_text, f"v{old.number}", f"v{new.number}")


# --- planning --------------------------------------------------------------------


def plan_change(yaml_text: str) -> ChangePlan:
    """Check `yaml_text` and say in words what applying it would change in the database."""
    from app.state import state

    current = current_version()
    plan = ChangePlan(diff=text_diff(current.yaml_text, yaml_text,
                                     f"v{current.number}", "new"))
    spec, plan.problems = checked_spec(yaml_text, str(current_app.config["SCHEMA_PATH"]),
                                       current_app.instance_path, read=False)
    if spec is None:
        return plan
    if spec.stem != state().spec.stem:
        spec = _same_stem(spec)
    plan.steps = _steps_for(spec)
    return plan


def _same_stem(spec: AppSpec) -> AppSpec:
    from dataclasses import replace

    from app.state import state

    return replace(spec, source=state().spec.source)


def _steps_for(spec: AppSpec) -> list[Step]:
    """The database changes between the database and `spec`, with counts of what is lost."""
    from app.migrate import _compare, _flatten
    from app.models import build_models
    from app.state import state

    metadata = build_models(spec).metadata
    with state().db.engine.connect() as conn:
        ops = _flatten(_compare(conn, metadata, spec))
        return [_step(op, conn) for op in ops]


def _step(op: tuple, conn: sa.Connection) -> Step:
    from app.migrate import describe

    text, lossy = describe(op)
    kind = op[0]
    if kind == "remove_table":
        name = op[1].name
        count = _count(conn, f"SELECT COUNT(*) FROM {_q(conn, name)}")
        return Step(gettext(N_("%(change)s — %(count)s rows will be lost"), change=text,
                            count=f"{count:,}"), True, name)
    if kind == "remove_column":
        table, column = op[2], op[3].name
        count = _count(conn, f"SELECT COUNT({_q(conn, column)}) FROM {_q(conn, table)}")
        return Step(gettext(N_("%(change)s — %(count)s values will be lost"), change=text,
                            count=f"{count:,}"), True, column)
    if not lossy:
        return Step(text, False, None)
    if kind in ("modify_type", "modify_nullable"):
        return Step(text, True, op[3])
    constraint = op[1]
    return Step(text, True, getattr(getattr(constraint, "table", None), "name", None))


def _q(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _count(conn: sa.Connection, sql: str) -> int:
    try:
        return int(conn.execute(sa.text(sql)).scalar() or 0)
    except sa.exc.SQLAlchemyError:
        conn.rollback()
        return 0


# --- applying --------------------------------------------------------------------


def apply_change(
    yaml_text: str,
    *,
    author: str,
    comment: str,
    confirmations: Iterable[str] = (),
) -> SchemaVersion:
    """Apply `yaml_text` as the next version through the guarded path, or raise.

    Raises ChangeRefused (schema problems, nothing changed, or a destructive
    step not confirmed) before anything is touched, and ChangeFailed when the
    migration failed (rolled back or restored; the backup is kept).
    """
    from app.state import state

    plan = plan_change(yaml_text)
    if plan.errors:
        raise ChangeRefused(plan, gettext(N_("The schema has %(count)d problem(s); nothing was "
                                             "changed."), count=len(plan.errors)))
    missing = plan.missing(confirmations)
    if missing:
        raise ChangeRefused(plan, gettext(
            N_("Some changes lose data: type %(names)s to confirm them. Nothing was changed."),
            names=", ".join(missing)))
    current = current_version()
    if digest_of(yaml_text) == current.digest:
        raise ChangeRefused(plan, gettext(N_("This text is the current version %(number)d; "
                                             "nothing to apply."), number=current.number))
    from app.state import release

    # The caller's open transaction may hold locks the migration needs (PostgreSQL, MariaDB).
    state().db.session.commit()
    number = current.number + 1
    candidate = build_candidate(yaml_text, number)
    try:
        with candidate.app_context():
            return _apply_in(candidate, yaml_text, number, plan, author, comment)
    finally:
        release(candidate)  # its listeners, models and connections: used for this apply only


def build_candidate(yaml_text: str, number: int | None = None) -> Flask:
    """An app built for `yaml_text`, on this app's database and instance."""
    from app import create_app
    from app.state import state

    config = {**state().build_config, "SCHEMA_TEXT": yaml_text, "SCHEMA_NUMBER": number,
              "SCHEMA_PATH": current_app.config["SCHEMA_PATH"],
              "INSTANCE_PATH": current_app.instance_path,
              "DATABASE_URL": current_app.config["SQLALCHEMY_DATABASE_URI"]}
    return create_app(config)


def _apply_in(candidate: Flask, yaml_text: str, number: int, plan: ChangePlan, author: str,
              comment: str) -> SchemaVersion:
    """Run the guarded apply in the candidate app, then store the version and audit it."""
    from app.audit import record_event
    from app.backup.guard import guarded_apply
    from app.state import state

    candidate.config["REVISIONS_IN_INSTANCE"] = True
    outcome = guarded_apply(f"designer v{number}", allow_destructive=True)
    if not outcome.ok:
        raise ChangeFailed(outcome.report, outcome.backup)
    table = _table()
    with state().db.engine.begin() as conn:
        conn.execute(table.insert().values(
            number=number, yaml_text=yaml_text, digest=digest_of(yaml_text), author=author,
            created_at=_now(), comment=comment or None, revision=outcome.revision,
            backup_file=outcome.backup,
        ))
        row = conn.execute(sa.select(table).where(table.c.number == number)).one()
    record_event("schema_version", detail={
        "number": number, "author": author, "comment": comment,
        "revision": outcome.revision, "backup": outcome.backup,
        "steps": [s.text for s in plan.steps], "diff": plan.diff[:AUDIT_DIFF_LIMIT],
    })
    log.info("schema version %s applied by %s (revision %s)", number, author, outcome.revision)
    return _row_to_version(row)


def reapply_version(
    version_id: int,
    *,
    author: str,
    comment: str,
    confirmations: Iterable[str] = (),
) -> SchemaVersion:
    """Roll back to an earlier version: apply its text as a new version, same guard."""
    version = get_version(version_id)
    if version is None:
        raise ChangeRefused(ChangePlan(), gettext(N_("No such schema version.")))
    return apply_change(version.yaml_text, author=author,
                        comment=comment or gettext(N_("Back to version %(number)d"),
                                                   number=version.number),
                        confirmations=confirmations)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
