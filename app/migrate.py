"""Alembic, driven by the generated metadata: upgrade, diff in words, apply.

Each schema file keeps its revisions apart, in `migrations/versions/<stem>/`
(or `MIGRATIONS_DIR`), so the CRM's history never mixes with another schema's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app

from app.i18n import N_, gettext
from app.models.indexes import include_object
from app.state import state

ROOT = Path(__file__).resolve().parent.parent


def versions_dir() -> Path:
    """The committed revisions: `MIGRATIONS_DIR`, else the package's folder for this schema.

    Only a configured folder is created here: a schema the package ships no
    revisions for gets its revisions in the instance (`instance_versions_dir`).
    """
    configured = current_app.config.get("MIGRATIONS_DIR")
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return ROOT / "migrations" / "versions" / state().spec.stem


def instance_versions_dir() -> Path:
    """Where the designer's revisions go: `<instance>/migrations/<stem>/`, never the source tree.

    Alembic reads them together with the package's committed revisions
    (`versions_dir()`); they continue that chain.
    """
    return Path(current_app.instance_path) / "migrations" / state().spec.stem


def revisions_dir() -> Path:
    """Where a new revision is written: the instance's folder, never the source tree.

    Only a configured `MIGRATIONS_DIR` (tests, or an operator's own folder) takes
    new revisions itself — unless a designer change asks for the instance.
    """
    if current_app.config.get("MIGRATIONS_DIR") and not current_app.config.get(
            "REVISIONS_IN_INSTANCE"):
        return versions_dir()
    path = instance_versions_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def alembic_config(connection: Any = None) -> Config:
    """Alembic's config for this schema; with `connection`, migrations run on it."""
    import os

    cfg = Config()
    if connection is not None:
        cfg.attributes["connection"] = connection
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    locations = [str(path) for path in (versions_dir(), instance_versions_dir())
                 if path.is_dir()]
    if not locations:  # a new schema: its first revision will go to the instance
        locations = [str(revisions_dir())]
    cfg.set_main_option("version_locations", os.pathsep.join(locations))
    cfg.set_main_option("path_separator", "os")
    return cfg


def has_revisions() -> bool:
    return bool(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revision() -> str | None:
    with state().db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The one head; None when there is none yet or two wait for `merge_heads`."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    return heads[0] if len(heads) == 1 else None


def merge_heads() -> str | None:
    """Join the package's and the instance's revision chains when both moved on; return the
    merge revision's id (written to the instance), or None when there is one head.

    The designer's revisions continue the package's chain as it was when they were made;
    upgrading the package adds revisions after that same point, so the chain forks. The
    merge revision is empty: each branch's changes apply as written.
    """
    from alembic import util

    config = alembic_config()
    heads = ScriptDirectory.from_config(config).get_heads()
    if len(heads) < 2:
        return None
    target = instance_versions_dir()
    target.mkdir(parents=True, exist_ok=True)
    config = alembic_config()  # lists the instance folder now that it exists
    script = ScriptDirectory.from_config(config).generate_revision(
        util.rev_id(), "merge package and instance revisions", refresh=True,
        head=sorted(heads), version_path=str(target), config=config)
    return script.revision if script is not None else None


def upgrade(revision: str = "head", connection: Any = None) -> None:
    """Apply the schema's revisions up to `revision` (in `connection`'s transaction if given)."""
    if revision == "head":
        merge_heads()
    command.upgrade(alembic_config(connection), revision)


def known_revision(revision: str) -> bool:
    """Whether `revision` is one of this schema's migrations."""
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def raw_diff(connection: Any = None) -> list[Any]:
    st = state()
    if connection is not None:
        return _compare(connection)
    with st.db.engine.connect() as conn:
        return _compare(conn)


def renames(spec: Any = None) -> dict[str, dict[str, str]]:
    """{table: {old column: new column}} of the fields declared `renamed_from: old_key`
    (their blind-index columns too)."""
    out: dict[str, dict[str, str]] = {}
    for entity in (spec or state().spec).entities:
        for f in entity.fields:
            if f.renamed_from is None:
                continue
            old = f"{f.renamed_from}_id" if f.is_foreign_key else f.renamed_from
            columns = out.setdefault(entity.name, {})
            columns[old] = f.column_name
            if entity.is_blind(f.name):
                columns[f"{old}__bi"] = f"{f.column_name}__bi"
    return out


def with_renames(diff: list[Any], mapping: dict[str, dict[str, str]]) -> list[Any]:
    """The diff with each (drop old column, add new column) pair of a declared rename
    turned into one ("rename_column", schema, table, old, new): values are kept."""
    flat = _flatten(diff)
    added = {(op[2], op[3].name) for op in flat if op[0] == "add_column"}
    out, renamed = [], set()
    for op in flat:
        new = mapping.get(op[2], {}).get(op[3].name) if op[0] == "remove_column" else None
        if new is not None and (op[2], new) in added:
            out.append(("rename_column", op[1], op[2], op[3].name, new))
            renamed.add((op[2], new))
        else:
            out.append(op)
    return [_moved(op, renamed) for op in out
            if not (op[0] == "add_column" and (op[2], op[3].name) in renamed)]


def _moved(op: tuple, renamed: set[tuple[str, str]]) -> tuple:
    """A constraint made again on renamed columns only (the old one goes with their old
    names) holds what held before: ("move_constraint", constraint), not a new check."""
    if op[0] != "add_constraint":
        return op
    constraint = op[1]
    columns = [c.name for c in getattr(constraint, "columns", [])]
    table = getattr(getattr(constraint, "table", None), "name", None)
    if columns and all((table, c) in renamed for c in columns):
        return ("move_constraint", constraint)
    return op


def _compare(conn: Any, metadata: Any = None, spec: Any = None) -> list[Any]:
    ctx = MigrationContext.configure(
        conn,
        opts={
            "compare_type": True,
            "include_name": lambda name, type_, parent: (
                not (type_ == "table" and name == "alembic_version")
            ),
            "include_object": include_object,  # trigram indexes (app/models/indexes.py)
        },
    )
    diff = compare_metadata(ctx, metadata if metadata is not None else state().models.metadata)
    mapping = renames(spec)
    return with_renames(diff, mapping) if mapping else diff


def _flatten(diff: list[Any]) -> list[tuple]:
    out: list[tuple] = []
    for item in diff:
        if isinstance(item, list):
            out.extend(item)
        else:
            out.append(item)
    return out


def describe(op: tuple) -> tuple[str, bool]:
    """Return a change in words, and whether it can lose data."""
    kind = op[0]
    if kind == "add_table":
        return gettext(N_("new table %(table)s"), table=op[1].name), False
    if kind == "remove_table":
        return gettext(N_("drop table %(table)s and all its rows"), table=op[1].name), True
    if kind == "add_column":
        return gettext(N_("new column %(table)s.%(column)s"), table=op[2], column=op[3].name), False
    if kind == "rename_column":
        return gettext(N_("rename column %(table)s.%(old)s to %(new)s (values kept)"),
                       table=op[2], old=op[3], new=op[4]), False
    if kind == "remove_column":
        return (
            gettext(
                N_("drop column %(table)s.%(column)s and its data"), table=op[2], column=op[3].name
            ),
            True,
        )
    if kind == "modify_type":
        old, new = op[5], op[6]
        narrowing = _narrows(old, new)
        return (
            gettext(
                N_("change type of %(table)s.%(column)s from %(old)s to %(new)s"),
                table=op[2],
                column=op[3],
                old=str(old),
                new=str(new),
            ),
            narrowing,
        )
    if kind == "modify_nullable":
        nullable = op[6]
        text = (
            N_("allow empty values in %(table)s.%(column)s")
            if nullable
            else N_("require a value in %(table)s.%(column)s")
        )
        return gettext(text, table=op[2], column=op[3]), not nullable
    if kind in ("add_index", "remove_index"):
        index = op[1]
        text = N_("new index %(name)s") if kind == "add_index" else N_("drop index %(name)s")
        return gettext(text, name=index.name), False
    if kind == "move_constraint":
        return gettext(N_("constraint %(name)s on %(table)s follows the renamed column"),
                       name=op[1].name or "", table=op[1].table.name), False
    if kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        constraint = op[1]
        text = (
            N_("new constraint %(name)s on %(table)s")
            if kind.startswith("add")
            else N_("drop constraint %(name)s on %(table)s")
        )
        return gettext(
            text, name=constraint.name or "", table=constraint.table.name
        ), kind == "add_constraint"
    return gettext(N_("other change: %(change)s"), change=kind), False


def _narrows(old: Any, new: Any) -> bool:
    old_len = getattr(old, "length", None)
    new_len = getattr(new, "length", None)
    if old_len and new_len:
        return new_len < old_len
    return type(old).__name__.lower() != type(new).__name__.lower()


def plan(connection: Any = None) -> list[tuple[str, bool]]:
    """The pending changes between the database and the schema, in words."""
    return [describe(op) for op in _flatten(raw_diff(connection))]


def pending_changes() -> list[str]:
    """Tables or columns the schema has and the database lacks (or the reverse)."""
    structural = ("add_table", "remove_table", "add_column", "remove_column")
    return [describe(op)[0] for op in _flatten(raw_diff()) if op[0] in structural]


def write_revision(message: str, connection: Any = None) -> str | None:
    """Write an autogenerated revision for the pending changes; return its id."""
    script = write_revision_script(message, connection)
    return script.revision if script is not None else None


def write_revision_script(message: str, connection: Any = None) -> Any:
    """Write an autogenerated revision; return Alembic's Script (it knows its file)."""
    target = revisions_dir()  # first: it creates the instance folder alembic_config lists
    script = command.revision(alembic_config(connection), message=message, autogenerate=True,
                              version_path=str(target),
                              process_revision_directives=_renaming(renames()))
    if isinstance(script, list):
        script = script[0] if script else None
    return script


def _renaming(mapping: dict[str, dict[str, str]]) -> Any:
    """Alembic's `process_revision_directives`: a declared rename becomes `alter_column(...,
    new_column_name=...)` instead of a drop and an add (which would lose the values).

    The renames of a table go in a step of their own, before the table's other changes
    (its index and constraint changes name the new columns; on SQLite each step is one
    batch, and a batch cannot index a column it renames).
    """
    from alembic.operations import ops

    def split(table_ops: Any) -> list[Any]:
        columns = mapping.get(table_ops.table_name) or {}
        added = {op.column.name: op.column for op in table_ops.ops
                 if isinstance(op, ops.AddColumnOp)}
        renames, kept = [], []
        for op in table_ops.ops:
            new = columns.get(op.column_name) if isinstance(op, ops.DropColumnOp) else None
            if new in added:
                column = added.pop(new)
                renames.append(ops.AlterColumnOp(
                    table_ops.table_name, op.column_name, schema=op.schema, modify_name=new,
                    existing_type=column.type, existing_nullable=column.nullable))
            else:
                kept.append(op)
        if not renames:
            return [table_ops]
        kept = [op for op in kept if not isinstance(op, ops.AddColumnOp)
                or op.column.name in added]
        steps = [ops.ModifyTableOps(table_ops.table_name, renames, schema=table_ops.schema)]
        if kept:
            steps.append(ops.ModifyTableOps(table_ops.table_name, kept, schema=table_ops.schema))
        return steps

    def backwards(step: Any) -> Any:
        """The downgrade of a rename step: the same renames, back."""
        return ops.ModifyTableOps(step.table_name, [ops.AlterColumnOp(
            op.table_name, op.modify_name, schema=op.schema, modify_name=op.column_name,
            existing_type=op.existing_type, existing_nullable=op.existing_nullable)
            for op in step.ops], schema=step.schema)

    def process(_context: Any, _revision: Any, directives: list[Any]) -> None:
        if not mapping or not directives:
            return
        script = directives[0]
        upgrade_steps: list[Any] = []
        for step in script.upgrade_ops.ops:
            upgrade_steps.extend(split(step) if isinstance(step, ops.ModifyTableOps) else [step])
        # A blind index is keyed by the field's name: emptied, it is made again under the
        # new name by `backfill_all`, which every upgrade and guarded apply runs after.
        upgrade_steps += [ops.ExecuteSQLOp(f"UPDATE {op.table_name} SET {op.modify_name} = NULL")
                          for step in upgrade_steps if isinstance(step, ops.ModifyTableOps)
                          for op in step.ops if isinstance(op, ops.AlterColumnOp)
                          and str(op.modify_name or "").endswith("__bi")]
        script.upgrade_ops.ops = upgrade_steps
        renamed = {id(step) for step in upgrade_steps if isinstance(step, ops.ModifyTableOps)
                   and step.ops and all(isinstance(op, ops.AlterColumnOp) and op.modify_name
                                        for op in step.ops)}
        # Renamed back first too: the other changes, undone, name the old columns.
        back = [backwards(step) for step in upgrade_steps if id(step) in renamed]
        undo = [step.reverse() for step in reversed(upgrade_steps)
                if id(step) not in renamed and not isinstance(step, ops.ExecuteSQLOp)]
        script.downgrade_ops = ops.DowngradeOps(ops=back + undo)

    return process


def apply(message: str = "schema apply") -> str | None:
    """Bring the database to the schema: upgrade, write a revision if needed, upgrade."""
    if has_revisions():
        upgrade()
    revision = None
    if not has_revisions() or plan():
        revision = write_revision(message if has_revisions() else "initial schema")
        upgrade()
    state().schema_mismatch = None
    return revision
