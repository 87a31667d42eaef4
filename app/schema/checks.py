"""Check a loaded schema document and build the spec from it.

Every problem is collected (never raised on the first one), each with a stable
code, its YAML path, file:line:column and, where it helps, a hint. The codes are
listed in `CODES`; docs/schema.md and the tests are generated from / walk it.
"""

from __future__ import annotations

import dataclasses
import difflib
import keyword
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from app.i18n import N_
from app.privacy import checks as privacy_checks
from app.schema import automation, rollups, views_checks
from app.schema.approvals import ApprovalChecker, warn_approvals
from app.schema.conditions import ConditionChecker
from app.schema.problems import Problem
from app.schema.spec import (
    ACTIONS,
    CHART_TYPES,
    DATE_TYPES,
    FIELD_TYPES,
    MEASURES,
    NUMERIC_TYPES,
    ON_DELETE,
    PERIODS,
    SYSTEM_COLUMNS,
    SYSTEM_ENTITIES,
    WORKFLOW_COMMENTS,
    AppSpec,
    ChartSpec,
    Choice,
    DashboardItem,
    EntitySpec,
    FieldSpec,
    Label,
    Measure,
    RoleSpec,
    RowRule,
    TransitionSpec,
    WorkflowSpec,
)

# code -> one-line description (the table in docs/schema.md)
CODES: dict[str, str] = {
    "SD-E001": "YAML syntax error",
    "SD-E002": "duplicate key in a mapping",
    "SD-E003": "a value has the wrong shape (mapping, list or scalar expected)",
    "SD-E004": "unsupported schema version",
    "SD-E101": "unknown key",
    "SD-E102": "required key missing",
    "SD-E103": "name is not a valid identifier",
    "SD-E104": "name is reserved",
    "SD-E105": "option value has the wrong type",
    "SD-E110": "unknown field type",
    "SD-E111": "relation to an entity that does not exist",
    "SD-E112": "relation without `to`",
    "SD-E113": "unknown on_delete value",
    "SD-E114": "option does not apply to this field type",
    "SD-E115": "enum without choices",
    "SD-E116": "default is not one of the enum's choices",
    "SD-E117": "decimal scale greater than precision",
    "SD-E118": "min greater than max",
    "SD-E119": "pattern is not a valid regular expression",
    "SD-E120": "on_delete: set_null on a required relation",
    "SD-E121": "default does not match the field type",
    "SD-E122": "unknown default locale",
    "SD-E123": "renamed_from clashes with another field",
    "SD-E130": "list names a missing field",
    "SD-E131": "search names a missing or non-text field",
    "SD-E132": "filters names a missing field",
    "SD-E133": "order names a missing field",
    "SD-E134": "title names a missing field",
    "SD-E135": "children names an entity without a relation back",
    "SD-E136": "import_key names a missing or non-unique field",
    "SD-E137": "a many-to-many field cannot be listed, searched, filtered or ordered",
    "SD-E140": "encrypted field used in search, filters, order or import_key",
    "SD-E141": "encrypted field cannot be unique",
    "SD-E150": "role grants on an unknown entity",
    "SD-E151": "unknown action",
    "SD-E152": "row rule names an unknown entity or field",
    "SD-E153": "row rule field does not lead to a user ($user) or to the $me entity ($me)",
    "SD-E154": "unknown $-value in a condition, or $me without an entity with a user field",
    "SD-E155": "role name is reserved",
    "SD-E156": "unknown condition operator",
    "SD-E157": "'under' on a relation to an entity that is not a tree",
    "SD-E158": "condition path goes on past a field that is not a relation",
    "SD-E159": "condition names a field stored encrypted (it would compare ciphertext)",
    "SD-E160": "unknown chart type",
    "SD-E161": "chart group_by names a missing or ungroupable field",
    "SD-E162": "period on a chart not grouped by a date",
    "SD-E163": "measure of a non-numeric field",
    "SD-E164": "unknown period",
    "SD-E165": "unknown measure",
    "SD-E166": "duplicate chart name",
    "SD-E170": "dashboard names an unknown chart",
    "SD-E171": "dashboard KPI is malformed",
    "SD-E180": "workflow field is missing or not an enum",
    "SD-E181": "workflow state is not a choice of the workflow field",
    "SD-E182": "duplicate workflow transition name",
    "SD-E183": "workflow transition names an unknown role",
    "SD-E184": "workflow transition requires a missing field",
    "SD-E185": "workflow transition comment is not 'required' or 'optional'",
    "SD-E186": "approval is not a list of levels, a mapping with 'levels', or 'same'",
    "SD-E187": "approval without levels",
    "SD-E188": "approval level names neither or both of 'by' and 'role'",
    "SD-E189": "approval level names an unknown role",
    "SD-E190": "'approval: same' without an approval above it",
    "SD-E191": "approval pending state is not a state, or equals the transition's from/to",
    "SD-E192": "approval 'by' path does not lead to a login account",
    "SD-E240": "unknown role mfa setting (not 'required' or 'optional')",
    "SD-E241": "role mfa setting is a yes/no value, not 'required' or 'optional'",
    "SD-W001": "label missing a translation",
    "SD-W002": "entity has no title field",
    "SD-W003": "workflow state cannot be reached from the initial state",
    "SD-W013": "approval role may not read the entity, so it can never decide",
    "SD-W014": "a transition moves from or to an approval's pending state",
}
CODES.update(views_checks.CODES)  # views, time zone, currency (app/schema/views_checks.py)
CODES.update(privacy_checks.CODES)  # subject, retention (app/privacy/checks.py)
CODES.update(automation.CODES)  # reminders and webhooks (app/schema/automation.py)
CODES.update(rollups.CODES)  # rollups and classify (app/schema/rollups.py)

TOP_KEYS = ("version", "app", "entities", "roles", "dashboards", "reminders", "webhooks")
APP_KEYS = ("title", "default_locale", "timezone")
ENTITY_KEYS = (
    "label",
    "menu",
    "title",
    "fields",
    "list",
    "search",
    "filters",
    "order",
    "children",
    "import_key",
    "charts",
    "workflow",
    "views",
    "subject",
    "retention",
)
WORKFLOW_KEYS = ("field", "initial", "transitions")
TRANSITION_KEYS = ("name", "from", "to", "roles", "requires", "when", "comment", "label",
                   "approval")
FIELD_KEYS = (
    "type",
    "label",
    "required",
    "unique",
    "default",
    "max_length",
    "min",
    "max",
    "pattern",
    "choices",
    "to",
    "on_delete",
    "many",
    "sensitive",
    "encrypted",
    "help",
    "readonly",
    "precision",
    "scale",
    "currency",
    "classify",  # enum set by rules: app/schema/rollups.py
    "renamed_from",  # the field's earlier key: a rename keeps the column's values
)
ROLE_KEYS = ("label", "grants", "rows", "mfa")
MFA_VALUES = ("optional", "required")
CHART_KEYS = ("name", "type", "group_by", "period", "measure", "label")
DASHBOARD_ITEM_KEYS = ("chart", "kpi", "label")

# option -> the field types it applies to (None: every type)
OPTION_TYPES: dict[str, tuple[str, ...]] = {
    "max_length": ("string", "text", "email", "phone", "url"),
    "min": ("integer", "decimal", "date", "datetime"),
    "max": ("integer", "decimal", "date", "datetime"),
    "pattern": ("string", "text", "email", "phone", "url"),
    "choices": ("enum",),
    "to": ("relation",),
    "on_delete": ("relation", "user"),
    "many": ("relation",),
    "precision": ("decimal",),
    "scale": ("decimal",),
    "currency": ("decimal",),
    "encrypted": ("string", "text", "email", "phone", "url"),
}
BOOL_OPTIONS = ("required", "unique", "many", "sensitive", "encrypted", "readonly")
INT_OPTIONS = ("max_length", "precision", "scale")
GROUPABLE = ("enum", "boolean", "relation", "user", "date", "datetime", "string", "integer")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# Entity names that would collide with the console's own URLs or tables.
RESERVED_ENTITIES = frozenset(
    {
        "api",
        "static",
        "lang",
        "dashboard",
        "audit",
        "jobs",
        "backups",
        "login",
        "logout",
        "users",
        "roles",
        "security",
        "appbuilder",
        "alembic_version",
        "schemadesk",
    }
    | set(SYSTEM_ENTITIES)
)
RESERVED_FIELDS = frozenset(set(SYSTEM_COLUMNS) | {"metadata", "query", "registry"})
RESERVED_ROLES = frozenset({"admin", "public"})


def suggest(word: str, options: Any) -> str | None:
    """Return the closest of `options` to `word`, or None."""
    found = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return found[0] if found else None


def me_entity(by_name: dict[str, EntitySpec]) -> str | None:
    """Return the entity whose records are "$me": the first with a `user` field."""
    return next((e.name for e in by_name.values() if e.user_field is not None), None)


class Checker:
    """Walk a loaded document, collect problems and build the spec."""

    def __init__(self, document: Any, filename: str):
        self.doc = document
        self.file = filename
        self.problems: list[Problem] = []

    # -- reporting ---------------------------------------------------------

    @staticmethod
    def position(node: Any, key: Any = None) -> tuple[int, int]:
        """Return the 1-based line and column of `node[key]` (or of `node`)."""
        try:
            if key is not None and isinstance(node, CommentedMap) and key in node:
                line, col = node.lc.key(key)
                return line + 1, col + 1
            if key is not None and isinstance(node, CommentedSeq) and isinstance(key, int):
                line, col = node.lc.item(key)
                return line + 1, col + 1
            if hasattr(node, "lc") and node.lc.line is not None:
                return node.lc.line + 1, node.lc.col + 1
        except (AttributeError, KeyError, IndexError, TypeError):
            pass
        return 1, 1

    def report(
        self,
        code: str,
        path: str,
        message: str,
        node: Any = None,
        key: Any = None,
        hint: str | None = None,
        hint_params: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        line, column = self.position(node, key)
        self.problems.append(
            Problem(
                code=code,
                path=path,
                message=message,
                params=params,
                file=self.file,
                line=line,
                column=column,
                hint=hint,
                hint_params=hint_params or {},
            )
        )

    def did_you_mean(self, word: Any, options: Any) -> dict[str, Any]:
        match = suggest(word, options)
        if match is None:
            return {}
        return {"hint": N_("did you mean '%(suggestion)s'?"), "hint_params": {"suggestion": match}}

    def expect_map(self, value: Any, path: str, parent: Any, key: Any) -> bool:
        if isinstance(value, dict):
            return True
        self.report(
            "SD-E003",
            path,
            N_("expected a mapping (key: value), found %(found)s"),
            parent,
            key,
            found=type(value).__name__,
        )
        return False

    def expect_list(self, value: Any, path: str, parent: Any, key: Any) -> bool:
        if isinstance(value, list):
            return True
        self.report(
            "SD-E003",
            path,
            N_("expected a list, found %(found)s"),
            parent,
            key,
            found=type(value).__name__,
        )
        return False

    def unknown_keys(self, node: dict, allowed: tuple[str, ...], path: str) -> None:
        for key in node:
            if key not in allowed:
                self.report(
                    "SD-E101",
                    f"{path}.{key}" if path else str(key),
                    N_("unknown key '%(name)s'"),
                    node,
                    key,
                    name=key,
                    **self.did_you_mean(key, allowed),
                )

    def label(self, value: Any, path: str, parent: Any, key: Any, default: str) -> Label:
        """Read a `{en, zh}` label; a plain string or a missing language warns."""
        if value is None:
            return Label(default, default)
        if isinstance(value, str):
            self.report(
                "SD-W001",
                path,
                N_("label '%(text)s' has one language only; give {en: ..., zh: ...}"),
                parent,
                key,
                text=value,
            )
            return Label(value, value)
        if not self.expect_map(value, path, parent, key):
            return Label(default, default)
        self.unknown_keys(value, ("en", "zh"), path)
        en = value.get("en")
        zh = value.get("zh")
        for lang, text in (("en", en), ("zh", zh)):
            if text is None or str(text).strip() == "":
                self.report(
                    "SD-W001",
                    path,
                    N_("label has no '%(lang)s' text; the other language is shown instead"),
                    parent,
                    key,
                    lang=lang,
                )
        en_text = str(en) if en else ""
        zh_text = str(zh) if zh else ""
        return Label(en_text or zh_text or default, zh_text or en_text or default)

    def identifier(self, name: Any, path: str, parent: Any, reserved: frozenset[str]) -> bool:
        if not isinstance(name, str) or not NAME_RE.match(name) or keyword.iskeyword(name):
            self.report(
                "SD-E103",
                path,
                N_(
                    "'%(name)s' is not a valid name: use lower-case letters, digits "
                    "and underscores, starting with a letter"
                ),
                parent,
                name,
                name=name,
            )
            return False
        if name in reserved or name.startswith("ab_"):
            self.report(
                "SD-E104",
                path,
                N_("'%(name)s' is reserved by SchemaDesk; choose another name"),
                parent,
                name,
                name=name,
            )
            return False
        return True

    # -- the document ------------------------------------------------------

    def run(self) -> AppSpec | None:
        doc = self.doc
        if doc is None:
            doc = CommentedMap()
        if not isinstance(doc, dict):
            self.report("SD-E003", "", N_("the schema must be a mapping at the top level"), doc)
            return None
        self.unknown_keys(doc, TOP_KEYS, "")
        version = doc.get("version")
        if version is None:
            self.report("SD-E102", "version", N_("'version' is required (version: 1)"), doc)
        elif version != 1:
            self.report(
                "SD-E004",
                "version",
                N_("schema version %(version)s is not supported; use version: 1"),
                doc,
                "version",
                version=version,
            )
        app = doc.get("app") or CommentedMap()
        title = Label("SchemaDesk", "SchemaDesk")
        default_locale = "zh"
        timezone = views_checks.check_timezone(self, app)
        if self.expect_map(app, "app", doc, "app"):
            self.unknown_keys(app, APP_KEYS, "app")
            title = self.label(app.get("title"), "app.title", app, "title", "SchemaDesk")
            default_locale = app.get("default_locale", "zh")
            if default_locale not in ("zh", "en"):
                self.report(
                    "SD-E122",
                    "app.default_locale",
                    N_("default_locale must be 'zh' or 'en', not '%(value)s'"),
                    app,
                    "default_locale",
                    value=default_locale,
                )
                default_locale = "zh"

        entities_node = doc.get("entities")
        if entities_node is None:
            self.report("SD-E102", "entities", N_("'entities' is required"), doc)
            entities_node = CommentedMap()
        if not self.expect_map(entities_node, "entities", doc, "entities"):
            entities_node = CommentedMap()

        # First pass: names, so relations can point forwards.
        names = [n for n in entities_node if isinstance(n, str)]
        entities: list[EntitySpec] = []
        for name, node in entities_node.items():
            path = f"entities.{name}"
            if not self.identifier(name, path, entities_node, RESERVED_ENTITIES):
                continue
            if not self.expect_map(node, path, entities_node, name):
                continue
            entity = self.entity(name, node, path, names)
            if entity is not None:
                entities.append(entity)
        by_name = {e.name: e for e in entities}
        for entity in entities:
            self.entity_links(entity, entities_node[entity.name], by_name)
        entities = rollups.with_rules(self, entities, entities_node, me_entity(by_name))
        by_name = {e.name: e for e in entities}

        roles = self.roles(doc.get("roles"), doc, by_name)
        entities = self.with_workflows(entities, entities_node, by_name, roles)
        entities = views_checks.with_views(self, entities, entities_node)
        entities = privacy_checks.with_privacy(self, entities, entities_node, me_entity(by_name))
        dashboards = self.dashboards(doc.get("dashboards"), doc, by_name)
        reminders = automation.check_reminders(self, doc, by_name, roles)
        webhooks = automation.check_webhooks(self, doc, by_name)
        if any(p.is_error for p in self.problems):
            return None
        return AppSpec(
            version=1,
            title=title,
            default_locale=default_locale,
            entities=tuple(entities),
            roles=tuple(roles),
            dashboards=dashboards,
            source=self.file,
            me_entity=me_entity(by_name),
            timezone=timezone,
            reminders=reminders,
            webhooks=webhooks,
        )

    def with_workflows(self, entities: list[EntitySpec], entities_node: Any,
                       by_name: dict[str, EntitySpec], roles: list[RoleSpec]
                       ) -> list[EntitySpec]:
        """The entities with their checked `workflow` (roles are known by now)."""
        role_names = [r.name for r in roles]
        result = []
        for entity in entities:
            wnode = entities_node[entity.name].get("workflow")
            if wnode is not None:
                workflow = self.workflow(entity, wnode, by_name, role_names)
                if workflow is not None:
                    warn_approvals(self, entity, workflow, roles, wnode,
                                   f"entities.{entity.name}.workflow")
                entity = by_name[entity.name] = dataclasses.replace(entity, workflow=workflow)
            result.append(entity)
        return result

    # -- entities ----------------------------------------------------------

    def entity(self, name: str, node: dict, path: str, names: list[str]) -> EntitySpec | None:
        self.unknown_keys(node, ENTITY_KEYS, path)
        label = self.label(node.get("label"), f"{path}.label", node, "label", name)
        menu = self.label(node.get("menu"), f"{path}.menu", node, "menu", label.en)
        if "label" not in node:
            self.report(
                "SD-W001", f"{path}.label", N_("entity has no label; its name is shown"), node
            )
        fields_node = node.get("fields")
        if fields_node is None:
            self.report("SD-E102", f"{path}.fields", N_("'fields' is required"), node)
            return None
        if not self.expect_map(fields_node, f"{path}.fields", node, "fields"):
            return None
        fields: list[FieldSpec] = []
        for fname, fnode in fields_node.items():
            fpath = f"{path}.fields.{fname}"
            if not self.identifier(fname, fpath, fields_node, RESERVED_FIELDS):
                continue
            if not self.expect_map(fnode, fpath, fields_node, fname):
                continue
            if fnode.get("type") == "rollup":
                spec = rollups.rollup_field(self, fname, fnode, fpath)
            else:
                spec = self.field(fname, fnode, fpath, names, fields_node)
            if spec is not None:
                fields.append(spec)
        self.renames(fields, path, fields_node)
        field_names = [f.name for f in fields]
        column_names = field_names + list(SYSTEM_COLUMNS)

        def names_list(key: str, code: str, allowed: list[str]) -> tuple[str, ...]:
            value = node.get(key)
            if value is None:
                return ()
            if not self.expect_list(value, f"{path}.{key}", node, key):
                return ()
            out = []
            for i, item in enumerate(value):
                item_name = str(item).lstrip("-") if key == "order" else item
                if item_name not in allowed:
                    self.report(
                        code,
                        f"{path}.{key}[{i}]",
                        N_("'%(name)s' is not a field of %(entity)s"),
                        value,
                        i,
                        name=item_name,
                        entity=name,
                        **self.did_you_mean(item_name, allowed),
                    )
                    continue
                out.append(str(item))
            return tuple(out)

        list_cols = names_list("list", "SD-E130", column_names)
        search = names_list("search", "SD-E131", field_names)
        filters = names_list("filters", "SD-E132", column_names)
        order = names_list("order", "SD-E133", column_names)
        by_field = {f.name: f for f in fields}
        for key, cols in (("list", list_cols), ("search", search), ("filters", filters)):
            for i, col in enumerate(cols):
                f = by_field.get(col)
                if f is not None and f.is_many and key != "list":
                    self.report(
                        "SD-E137",
                        f"{path}.{key}[{i}]",
                        N_("'%(name)s' is many-to-many and cannot be used in %(option)s"),
                        node[key],
                        i,
                        name=col,
                        option=key,
                    )
        for i, col in enumerate(search):
            f = by_field.get(col)
            if f is not None and f.type not in ("string", "text", "email", "phone", "url"):
                self.report(
                    "SD-E131",
                    f"{path}.search[{i}]",
                    N_("'%(name)s' is a %(type)s field; free-text search needs a text field"),
                    node["search"],
                    i,
                    name=col,
                    type=f.type,
                )
        for i, col in enumerate(order):
            f = by_field.get(col.lstrip("-"))
            if f is not None and f.is_many:
                self.report(
                    "SD-E137",
                    f"{path}.order[{i}]",
                    N_("'%(name)s' is many-to-many and cannot be used in %(option)s"),
                    node["order"],
                    i,
                    name=col,
                    option="order",
                )
        for key, cols in (("search", search), ("filters", filters), ("order", order)):
            for i, col in enumerate(cols):
                f = by_field.get(col.lstrip("-"))
                if f is not None and f.encrypted:
                    self.report(
                        "SD-E140",
                        f"{path}.{key}[{i}]",
                        N_(
                            "'%(name)s' is encrypted and cannot be used in %(option)s "
                            "(the database only sees ciphertext)"
                        ),
                        node[key],
                        i,
                        name=col,
                        option=key,
                    )

        title = node.get("title")
        if title is not None and title not in field_names:
            self.report(
                "SD-E134",
                f"{path}.title",
                N_("'%(name)s' is not a field of %(entity)s"),
                node,
                "title",
                name=title,
                entity=name,
                **self.did_you_mean(title, field_names),
            )
            title = None
        elif title is None:
            first_text = next((f.name for f in fields if f.type in ("string", "email")), None)
            if first_text is None:
                self.report(
                    "SD-W002",
                    f"{path}.title",
                    N_("%(entity)s has no title; records are named by their id"),
                    node,
                    entity=name,
                )
            title = first_text

        import_key = node.get("import_key")
        if import_key is not None:
            f = by_field.get(import_key)
            if f is None or not f.unique:
                self.report(
                    "SD-E136",
                    f"{path}.import_key",
                    N_("import_key '%(name)s' must be a unique field of %(entity)s"),
                    node,
                    "import_key",
                    name=import_key,
                    entity=name,
                    **(self.did_you_mean(import_key, field_names) if f is None else {}),
                )
                import_key = None
            elif f.encrypted:
                self.report(
                    "SD-E140",
                    f"{path}.import_key",
                    N_(
                        "'%(name)s' is encrypted and cannot be used in %(option)s "
                        "(the database only sees ciphertext)"
                    ),
                    node,
                    "import_key",
                    name=import_key,
                    option="import_key",
                )
                import_key = None

        children = node.get("children") or []
        if not self.expect_list(children, f"{path}.children", node, "children"):
            children = []
        charts = self.charts(node.get("charts"), f"{path}.charts", node, by_field)
        return EntitySpec(
            name=name,
            label=label,
            menu=menu,
            fields=tuple(fields),
            title=title,
            list=list_cols or tuple(f.name for f in fields if not f.is_many)[:6],
            search=search,
            filters=filters,
            order=order or ("-created_at",),
            children=tuple(str(c) for c in children),
            import_key=import_key,
            charts=charts,
        )

    def entity_links(self, entity: EntitySpec, node: dict, by_name: dict[str, EntitySpec]) -> None:
        """Check what names other entities: children, `default: $me`."""
        me = me_entity(by_name)
        for f in entity.fields:
            if f.default == "$me" and f.to != me:
                fnode = node.get("fields", {}).get(f.name)
                self.report(
                    "SD-E121",
                    f"entities.{entity.name}.fields.{f.name}.default",
                    N_("default $me needs a relation to %(entity)s, the entity with a user field"),
                    fnode,
                    "default",
                    entity=me or "?",
                )
        path = f"entities.{entity.name}.children"
        for i, child in enumerate(entity.children):
            target = by_name.get(child)
            if target is None:
                self.report(
                    "SD-E135",
                    f"{path}[{i}]",
                    N_("'%(name)s' is not an entity"),
                    node.get("children"),
                    i,
                    name=child,
                    **self.did_you_mean(child, by_name),
                )
                continue
            if not any(f.is_foreign_key and f.to == entity.name for f in target.fields):
                self.report(
                    "SD-E135",
                    f"{path}[{i}]",
                    N_(
                        "%(child)s has no relation to %(entity)s, so it cannot be listed as a child"
                    ),
                    node.get("children"),
                    i,
                    child=child,
                    entity=entity.name,
                )

    def field(
        self, name: str, node: dict, path: str, entity_names: list[str], parent: dict
    ) -> FieldSpec | None:
        self.unknown_keys(node, FIELD_KEYS, path)
        ftype = node.get("type")
        if ftype is None:
            self.report("SD-E102", f"{path}.type", N_("'type' is required"), parent, name)
            return None
        if ftype not in FIELD_TYPES:
            self.report(
                "SD-E110",
                f"{path}.type",
                N_("unknown field type '%(type)s'"),
                node,
                "type",
                type=ftype,
                **self.did_you_mean(ftype, FIELD_TYPES),
            )
            return None
        ok = True
        for option, types in OPTION_TYPES.items():
            if option in node and ftype not in types:
                self.report(
                    "SD-E114",
                    f"{path}.{option}",
                    N_("'%(option)s' does not apply to a %(type)s field"),
                    node,
                    option,
                    option=option,
                    type=ftype,
                )
                ok = False
        for option in BOOL_OPTIONS:
            if option in node and not isinstance(node[option], bool):
                self.report(
                    "SD-E105",
                    f"{path}.{option}",
                    N_("'%(option)s' must be true or false"),
                    node,
                    option,
                    option=option,
                )
                ok = False
        for option in INT_OPTIONS:
            value = node.get(option)
            if option in node and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                self.report(
                    "SD-E105",
                    f"{path}.{option}",
                    N_("'%(option)s' must be a whole number, 0 or more"),
                    node,
                    option,
                    option=option,
                )
                ok = False
        bounds: dict[str, Any] = {}
        for option in ("min", "max"):
            if option in node and ftype in ("integer", "decimal"):
                try:
                    value = node[option]
                    if isinstance(value, bool):
                        raise InvalidOperation
                    bounds[option] = int(value) if ftype == "integer" else Decimal(str(value))
                except (InvalidOperation, ValueError, TypeError):
                    self.report(
                        "SD-E105",
                        f"{path}.{option}",
                        N_("'%(option)s' must be a number"),
                        node,
                        option,
                        option=option,
                    )
                    ok = False
            elif option in node and ftype in DATE_TYPES:
                bounds[option] = node[option]
        if "min" in bounds and "max" in bounds:
            try:
                if bounds["min"] > bounds["max"]:
                    self.report(
                        "SD-E118",
                        f"{path}.min",
                        N_("min (%(min)s) is greater than max (%(max)s)"),
                        node,
                        "min",
                        min=bounds["min"],
                        max=bounds["max"],
                    )
                    ok = False
            except TypeError:
                pass
        pattern = node.get("pattern")
        if pattern is not None:
            try:
                re.compile(str(pattern))
            except re.error as exc:
                self.report(
                    "SD-E119",
                    f"{path}.pattern",
                    N_("pattern is not a valid regular expression: %(error)s"),
                    node,
                    "pattern",
                    error=str(exc),
                )
                ok = False
        precision = node.get("precision", 12)
        scale = node.get("scale", 2)
        if ftype == "decimal" and isinstance(precision, int) and isinstance(scale, int):
            if scale > precision:
                self.report(
                    "SD-E117",
                    f"{path}.scale",
                    N_("scale (%(scale)s) cannot be greater than precision (%(precision)s)"),
                    node,
                    "scale",
                    scale=scale,
                    precision=precision,
                )
                ok = False
        choices: list[Choice] = []
        if ftype == "enum":
            raw = node.get("choices")
            if not raw:
                self.report(
                    "SD-E115",
                    f"{path}.choices",
                    N_("an enum field needs choices"),
                    parent,
                    name,
                )
                ok = False
            elif isinstance(raw, list):
                for i, key in enumerate(raw):
                    choices.append(Choice(str(key), Label(str(key), str(key))))
                    if not isinstance(key, str):
                        self.report(
                            "SD-E105",
                            f"{path}.choices[{i}]",
                            N_("choice keys must be text"),
                            raw,
                            i,
                        )
            elif self.expect_map(raw, f"{path}.choices", node, "choices"):
                for key, label in raw.items():
                    choices.append(
                        Choice(
                            str(key),
                            self.label(label, f"{path}.choices.{key}", raw, key, str(key)),
                        )
                    )
            else:
                ok = False
        to = node.get("to")
        if ftype == "relation":
            if to is None:
                self.report(
                    "SD-E112",
                    f"{path}.to",
                    N_("a relation needs 'to: <entity>'"),
                    parent,
                    name,
                )
                ok = False
            elif to not in entity_names:
                self.report(
                    "SD-E111",
                    f"{path}.to",
                    N_("'%(target)s' is not an entity"),
                    node,
                    "to",
                    target=to,
                    **self.did_you_mean(to, entity_names),
                )
                ok = False
        required = node.get("required", False) is True
        on_delete = node.get("on_delete", "restrict" if required else "set_null")
        if on_delete not in ON_DELETE:
            self.report(
                "SD-E113",
                f"{path}.on_delete",
                N_("on_delete must be one of %(values)s, not '%(value)s'"),
                node,
                "on_delete",
                values=", ".join(ON_DELETE),
                value=on_delete,
                **self.did_you_mean(on_delete, ON_DELETE),
            )
            ok = False
        many = node.get("many", False) is True
        if (
            ftype in ("relation", "user")
            and "on_delete" in node
            and on_delete == "set_null"
            and required
            and not many
        ):
            self.report(
                "SD-E120",
                f"{path}.on_delete",
                N_("a required relation cannot be set to empty when its target is deleted"),
                node,
                "on_delete",
                hint=N_("use on_delete: cascade or restrict"),
            )
            ok = False
        if node.get("encrypted") is True and node.get("unique") is True:
            self.report(
                "SD-E141",
                f"{path}.unique",
                N_("an encrypted field cannot be unique (each value is encrypted differently)"),
                node,
                "unique",
            )
            ok = False
        default = node.get("default")
        if default is not None:
            default, default_ok = self.check_default(default, ftype, choices, path, node)
            ok = ok and default_ok
        currency, currency_ok = views_checks.check_currency(self, node, path)
        renamed_from, renamed_ok = self.renamed_from(node, path, ftype, many)
        if not ok or not currency_ok or not renamed_ok:
            return None
        return FieldSpec(
            name=name,
            type=ftype,
            label=self.label(node.get("label"), f"{path}.label", node, "label", name),
            required=required,
            unique=node.get("unique", False) is True,
            default=default,
            max_length=node.get("max_length"),
            min=bounds.get("min"),
            max=bounds.get("max"),
            pattern=str(pattern) if pattern is not None else None,
            choices=tuple(choices),
            to=str(to) if to else None,
            on_delete=on_delete if ftype in ("relation", "user") else "set_null",
            many=many,
            sensitive=node.get("sensitive", False) is True,
            encrypted=node.get("encrypted", False) is True,
            help=self.label(node.get("help"), f"{path}.help", node, "help", "")
            if node.get("help") is not None
            else None,
            readonly=node.get("readonly", False) is True,
            precision=precision if isinstance(precision, int) else 12,
            scale=scale if isinstance(scale, int) else 2,
            currency=currency,
            renamed_from=renamed_from,
        )

    def renamed_from(self, node: dict, path: str, ftype: str, many: bool
                     ) -> tuple[str | None, bool]:
        """`renamed_from: old_key`: the field's column is renamed from the old key's."""
        if "renamed_from" not in node:
            return None, True
        value = node["renamed_from"]
        if not isinstance(value, str) or not NAME_RE.match(value):
            self.report("SD-E105", f"{path}.renamed_from",
                        N_("'renamed_from' must be a field key (a-z, 0-9, _)"), node,
                        "renamed_from")
            return None, False
        if ftype == "relation" and many:
            self.report("SD-E114", f"{path}.renamed_from",
                        N_("'%(option)s' does not apply to a %(type)s field"), node,
                        "renamed_from", option="renamed_from", type="many-to-many")
            return None, False
        return value, True

    def renames(self, fields: list[FieldSpec], path: str, fields_node: dict) -> None:
        """Two fields cannot both be renamed from one key, nor a field from its own."""
        seen: set[str] = set()
        for f in fields:
            old = f.renamed_from
            if old is None:
                continue
            if old == f.name or old in seen:
                self.report("SD-E123", f"{path}.fields.{f.name}.renamed_from",
                            N_("'%(old)s' is this field's own key, or another field was "
                               "renamed from it too"),
                            fields_node.get(f.name), "renamed_from", old=old)
            seen.add(old)

    def check_default(
        self, default: Any, ftype: str, choices: list[Choice], path: str, node: dict
    ) -> tuple[Any, bool]:
        if ftype == "enum":
            keys = [c.key for c in choices]
            if choices and str(default) not in keys:
                self.report(
                    "SD-E116",
                    f"{path}.default",
                    N_("default '%(value)s' is not one of the choices"),
                    node,
                    "default",
                    value=default,
                    **self.did_you_mean(default, keys),
                )
                return None, False
            return str(default), True
        valid = True
        if ftype == "boolean":
            valid = isinstance(default, bool)
        elif ftype == "integer":
            valid = isinstance(default, int) and not isinstance(default, bool)
        elif ftype == "decimal":
            try:
                default = Decimal(str(default))
                valid = not isinstance(node.get("default"), bool)
            except InvalidOperation:
                valid = False
        elif ftype == "relation":
            # `$me`: the signed-in user's own record (checked in `entity_links`).
            valid = default == "$me"
        elif ftype == "user":
            valid = default == "$user"
        elif ftype in DATE_TYPES:
            valid = str(default) in ("now", "today") or hasattr(default, "year")
        else:
            valid = isinstance(default, str | int | float) and not isinstance(default, bool)
            default = str(default)
        if not valid:
            self.report(
                "SD-E121",
                f"{path}.default",
                N_("default '%(value)s' is not a valid %(type)s value"),
                node,
                "default",
                value=node.get("default"),
                type=ftype,
            )
            return None, False
        return default, True

    def charts(
        self, node: Any, path: str, parent: dict, by_field: dict[str, FieldSpec]
    ) -> tuple[ChartSpec, ...]:
        if node is None:
            return ()
        if not self.expect_list(node, path, parent, "charts"):
            return ()
        charts: list[ChartSpec] = []
        seen: set[str] = set()
        date_fields = {"created_at", "updated_at"}
        for i, item in enumerate(node):
            cpath = f"{path}[{i}]"
            if not self.expect_map(item, cpath, node, i):
                continue
            self.unknown_keys(item, CHART_KEYS, cpath)
            name = item.get("name")
            if name is None:
                self.report("SD-E102", f"{cpath}.name", N_("'name' is required"), node, i)
                continue
            if not self.identifier(name, f"{cpath}.name", item, frozenset()):
                continue
            if name in seen:
                self.report(
                    "SD-E166",
                    f"{cpath}.name",
                    N_("chart '%(name)s' is defined twice"),
                    item,
                    "name",
                    name=name,
                )
                continue
            seen.add(name)
            ctype = item.get("type", "bar")
            ok = True
            if ctype not in CHART_TYPES:
                self.report(
                    "SD-E160",
                    f"{cpath}.type",
                    N_("unknown chart type '%(type)s'"),
                    item,
                    "type",
                    type=ctype,
                    **self.did_you_mean(ctype, CHART_TYPES),
                )
                ok = False
            group_by = item.get("group_by")
            group_type = None
            if group_by is not None:
                f = by_field.get(group_by)
                if group_by in date_fields:
                    group_type = "datetime"
                elif f is None or f.type not in GROUPABLE or f.is_many or f.encrypted:
                    self.report(
                        "SD-E161",
                        f"{cpath}.group_by",
                        N_(
                            "'%(name)s' cannot group a chart: "
                            "use an enum, boolean, relation or date field"
                        ),
                        item,
                        "group_by",
                        name=group_by,
                        **self.did_you_mean(group_by, list(by_field) + sorted(date_fields)),
                    )
                    ok = False
                else:
                    group_type = f.type
            elif ctype in ("pie", "bar", "line"):
                self.report(
                    "SD-E102",
                    f"{cpath}.group_by",
                    N_("a %(type)s chart needs 'group_by'"),
                    node,
                    i,
                    type=ctype,
                )
                ok = False
            period = item.get("period")
            if period is not None:
                if period not in PERIODS:
                    self.report(
                        "SD-E164",
                        f"{cpath}.period",
                        N_("unknown period '%(value)s'"),
                        item,
                        "period",
                        value=period,
                        **self.did_you_mean(period, PERIODS),
                    )
                    ok = False
                elif group_type is not None and group_type not in DATE_TYPES:
                    self.report(
                        "SD-E162",
                        f"{cpath}.period",
                        N_("'period' needs group_by to be a date or datetime field"),
                        item,
                        "period",
                    )
                    ok = False
            elif group_type in DATE_TYPES:
                period = "month"
            measure = Measure()
            raw_measure = item.get("measure")
            if raw_measure is not None:
                if isinstance(raw_measure, str) and raw_measure == "count":
                    measure = Measure()
                elif self.expect_map(raw_measure, f"{cpath}.measure", item, "measure"):
                    if len(raw_measure) != 1:
                        self.report(
                            "SD-E165",
                            f"{cpath}.measure",
                            N_("measure takes one entry, such as {sum: amount}"),
                            item,
                            "measure",
                        )
                        ok = False
                    else:
                        func, mfield = next(iter(raw_measure.items()))
                        target = by_field.get(mfield)
                        if func not in MEASURES or func == "count":
                            self.report(
                                "SD-E165",
                                f"{cpath}.measure",
                                N_("unknown measure '%(value)s'"),
                                item,
                                "measure",
                                value=func,
                                **self.did_you_mean(func, MEASURES),
                            )
                            ok = False
                        elif target is None or target.type not in NUMERIC_TYPES:
                            self.report(
                                "SD-E163",
                                f"{cpath}.measure",
                                N_("'%(name)s' is not a numeric field"),
                                item,
                                "measure",
                                name=mfield,
                            )
                            ok = False
                        else:
                            measure = Measure(str(func), str(mfield))
                else:
                    ok = False
            label = self.label(item.get("label"), f"{cpath}.label", item, "label", name)
            if ok:
                charts.append(
                    ChartSpec(
                        name=name,
                        type=ctype,
                        label=label,
                        group_by=group_by,
                        period=period,
                        measure=measure,
                    )
                )
        return tuple(charts)

    # -- roles and dashboards ---------------------------------------------

    def roles(self, node: Any, doc: dict, by_name: dict[str, EntitySpec]) -> list[RoleSpec]:
        if node is None:
            return []
        if not self.expect_map(node, "roles", doc, "roles"):
            return []
        grantable = list(by_name) + list(SYSTEM_ENTITIES) + ["*"]
        roles: list[RoleSpec] = []
        for name, rnode in node.items():
            path = f"roles.{name}"
            if isinstance(name, str) and name.lower() in RESERVED_ROLES:
                self.report(
                    "SD-E155",
                    path,
                    N_("'%(name)s' is a built-in role and cannot be redefined"),
                    node,
                    name,
                    name=name,
                )
                continue
            if not isinstance(name, str) or not NAME_RE.match(name):
                self.identifier(name, path, node, frozenset())
                continue
            if not self.expect_map(rnode, path, node, name):
                continue
            self.unknown_keys(rnode, ROLE_KEYS, path)
            label = self.label(rnode.get("label"), f"{path}.label", rnode, "label", name)
            grants: dict[str, frozenset[str]] = {}
            gnode = rnode.get("grants") or CommentedMap()
            if self.expect_map(gnode, f"{path}.grants", rnode, "grants"):
                for entity, actions in gnode.items():
                    gpath = f"{path}.grants.{entity}"
                    if entity not in grantable:
                        self.report(
                            "SD-E150",
                            gpath,
                            N_("'%(name)s' is not an entity"),
                            gnode,
                            entity,
                            name=entity,
                            **self.did_you_mean(entity, grantable),
                        )
                        continue
                    if not self.expect_list(actions, gpath, gnode, entity):
                        continue
                    valid = []
                    for i, action in enumerate(actions):
                        if action not in ACTIONS:
                            self.report(
                                "SD-E151",
                                f"{gpath}[{i}]",
                                N_("unknown action '%(action)s'; actions are %(actions)s"),
                                actions,
                                i,
                                action=action,
                                actions=", ".join(ACTIONS),
                                **self.did_you_mean(action, ACTIONS),
                            )
                            continue
                        valid.append(str(action))
                    grants[str(entity)] = frozenset(valid)
            rows: list[RowRule] = []
            conditions = ConditionChecker(self, by_name, me_entity(by_name))
            rows_node = rnode.get("rows")
            if rows_node is not None and self.expect_map(rows_node, f"{path}.rows", rnode, "rows"):
                for entity, rule in rows_node.items():
                    rpath = f"{path}.rows.{entity}"
                    target = by_name.get(entity)
                    if target is None:
                        self.report(
                            "SD-E152",
                            rpath,
                            N_("'%(name)s' is not an entity"),
                            rows_node,
                            entity,
                            name=entity,
                            **self.did_you_mean(entity, by_name),
                        )
                        continue
                    condition = conditions.parse(rule, target, rpath, rows_node, entity)
                    if condition is not None:
                        rows.append(RowRule(str(entity), condition))
            roles.append(RoleSpec(name=name, label=label, grants=grants, rows=tuple(rows),
                                  mfa=self.role_mfa(rnode, path)))
        return roles

    def role_mfa(self, rnode: Any, path: str) -> str:
        """Check `roles.<r>.mfa` (two-factor sign-in, 两步验证); return it (default "optional")."""
        if "mfa" not in rnode:
            return "optional"
        value = rnode["mfa"]
        if isinstance(value, bool):
            # `mfa: true` reads as "on", but the setting names a policy: say which word.
            self.report("SD-E241", f"{path}.mfa",
                        N_("'%(value)s' is read as a yes/no value; write mfa: required "
                           "or mfa: optional"), rnode, "mfa",
                        hint=N_("quote nothing, just write: mfa: required"), value=value)
            return "optional"
        if value not in MFA_VALUES:
            self.report("SD-E240", f"{path}.mfa",
                        N_("unknown mfa setting '%(value)s'; it is one of %(values)s"),
                        rnode, "mfa", value=value, values=", ".join(MFA_VALUES),
                        **(self.did_you_mean(str(value), MFA_VALUES)
                           or {"hint": N_("write mfa: required or leave it out")}))
            return "optional"
        return str(value)

    def workflow(self, entity: EntitySpec, node: Any, by_name: dict[str, EntitySpec],
                 role_names: list[str]) -> WorkflowSpec | None:
        """Check `entities.<e>.workflow`; return its spec, or None on a problem."""
        path = f"entities.{entity.name}.workflow"
        parent = self.doc["entities"][entity.name]
        if not self.expect_map(node, path, parent, "workflow"):
            return None
        self.unknown_keys(node, WORKFLOW_KEYS, path)
        ok = True
        for key in WORKFLOW_KEYS:
            if key not in node:
                self.report("SD-E102", f"{path}.{key}", N_("'%(name)s' is required"), node,
                            name=key)
                ok = False
        field_name = node.get("field")
        states = self.workflow_states(entity, node, path)
        if field_name is not None and states is None:
            ok = False
        states = states or []

        def state(value: Any, spath: str, snode: Any, key: Any) -> bool:
            if not states or value in states:
                return True
            self.report("SD-E181", spath,
                        N_("'%(state)s' is not a choice of %(field)s (choices: %(choices)s)"),
                        snode, key, state=value, field=field_name, choices=", ".join(states),
                        **self.did_you_mean(value, states))
            return False

        initial = node.get("initial")
        if initial is not None and not state(initial, f"{path}.initial", node, "initial"):
            ok = False
        transitions: list[TransitionSpec] = []
        tnode = node.get("transitions")
        if tnode is not None and not self.expect_list(tnode, f"{path}.transitions", node,
                                                      "transitions"):
            tnode, ok = None, False
        conditions = ConditionChecker(self, by_name, me_entity(by_name))
        approvals = ApprovalChecker(self, entity, by_name, role_names, conditions, states)
        seen: set[str] = set()
        for i, item in enumerate(tnode or []):
            tpath = f"{path}.transitions[{i}]"
            transition = self.transition(entity, item, tpath, tnode, i, state, role_names,
                                         conditions, approvals)
            if transition is None:
                ok = False
                continue
            if transition.name in seen:
                self.report("SD-E182", f"{tpath}.name",
                            N_("a transition named '%(name)s' is already defined"), item, "name",
                            name=transition.name)
                ok = False
                continue
            seen.add(transition.name)
            transitions.append(transition)
        if not ok:
            return None
        spec = WorkflowSpec(str(field_name), str(initial), tuple(transitions))
        self.warn_unreachable(spec, states, node, path)
        return spec

    def workflow_states(self, entity: EntitySpec, node: Any, path: str) -> list[str] | None:
        """The choices of the workflow's enum field ([] without one; None on a problem)."""
        field_name = node.get("field")
        if field_name is None:
            return []
        f = entity.field(field_name) if entity.has_field(str(field_name)) else None
        if f is None or f.type != "enum":
            self.report(
                "SD-E180", f"{path}.field",
                N_("'%(name)s' is not an enum field of %(entity)s; a workflow moves an "
                   "enum from choice to choice"), node, "field", name=field_name,
                entity=entity.name,
                **self.did_you_mean(field_name, [x.name for x in entity.fields
                                                 if x.type == "enum"]))
            return None
        return [c.key for c in f.choices]

    def warn_unreachable(self, spec: WorkflowSpec, states: list[str], node: Any,
                         path: str) -> None:
        """Warn about states no chain of transitions reaches from `initial`."""
        reached = {spec.initial}
        frontier = [spec.initial]
        while frontier:
            current = frontier.pop()
            for t in spec.transitions:
                if current not in t.sources:
                    continue
                pending = t.approval.pending if t.approval is not None else None
                for target in (t.to, pending):
                    if target is not None and target not in reached:
                        reached.add(target)
                        frontier.append(target)
        for name in states:
            if name not in reached:
                self.report("SD-W003", f"{path}.transitions",
                            N_("state '%(state)s' cannot be reached from '%(initial)s' by any "
                               "transition"), node, "transitions", state=name,
                            initial=spec.initial)

    def transition_lists(self, entity: EntitySpec, item: Any, path: str,
                         role_names: list[str]) -> dict[str, list[str]] | None:
        """A transition's `roles` and `requires`, checked; None on a problem."""
        lists: dict[str, list[str]] = {}
        ok = True
        for key in ("roles", "requires"):
            value = item.get(key, [])
            if not self.expect_list(value, f"{path}.{key}", item, key):
                ok = False
                continue
            lists[key] = [str(v) for v in value]
        for j, role in enumerate(lists.get("roles", [])):
            if role not in role_names and role.lower() != "admin":
                self.report("SD-E183", f"{path}.roles[{j}]", N_("'%(name)s' is not a role"),
                            item["roles"], j, name=role, **self.did_you_mean(role, role_names))
                ok = False
        field_names = [f.name for f in entity.fields]
        for j, required in enumerate(lists.get("requires", [])):
            if required not in field_names:
                self.report("SD-E184", f"{path}.requires[{j}]",
                            N_("'%(name)s' is not a field of %(entity)s"), item["requires"], j,
                            name=required, entity=entity.name,
                            **self.did_you_mean(required, field_names))
                ok = False
        return lists if ok else None

    def transition(self, entity: EntitySpec, item: Any, path: str, parent: Any, index: int,
                   state: Any, role_names: list[str], conditions: ConditionChecker,
                   approvals: ApprovalChecker | None = None) -> TransitionSpec | None:
        """Check one transition of a workflow; return it, or None on a problem."""
        if not self.expect_map(item, path, parent, index):
            return None
        self.unknown_keys(item, TRANSITION_KEYS, path)
        ok = True
        for key in ("name", "from", "to"):
            if key not in item:
                self.report("SD-E102", f"{path}.{key}", N_("'%(name)s' is required"), item,
                            name=key)
                ok = False
        name = item.get("name")
        if name is not None and not self.identifier(name, f"{path}.name", item, frozenset()):
            ok = False
        sources = item.get("from")
        if isinstance(sources, list):
            for j, source in enumerate(sources):
                ok = state(source, f"{path}.from[{j}]", sources, j) and ok
        else:
            ok = ("from" not in item or state(sources, f"{path}.from", item, "from")) and ok
            sources = [sources]
        if "to" in item and not state(item.get("to"), f"{path}.to", item, "to"):
            ok = False
        lists = self.transition_lists(entity, item, path, role_names)
        ok = ok and lists is not None
        lists = lists or {}
        comment = item.get("comment", "optional")
        if comment not in WORKFLOW_COMMENTS:
            self.report("SD-E185", f"{path}.comment",
                        N_("comment must be 'required' or 'optional', not '%(value)s'"), item,
                        "comment", value=comment, **self.did_you_mean(comment, WORKFLOW_COMMENTS))
            ok = False
        when = None
        if "when" in item:
            when = conditions.parse(item["when"], entity, f"{path}.when", item, "when")
            ok = ok and when is not None
        label = self.label(item.get("label"), f"{path}.label", item, "label", str(name))
        approval_ok, approval = approvals.parse(item, path) if approvals else (True, None)
        if not ok or not approval_ok:
            return None
        return TransitionSpec(
            name=str(name), sources=tuple(str(s) for s in sources), to=str(item["to"]),
            label=label, roles=tuple(lists.get("roles", ())),
            requires=tuple(lists.get("requires", ())), when=when, comment=str(comment),
            approval=approval)

    def dashboards(
        self, node: Any, doc: dict, by_name: dict[str, EntitySpec]
    ) -> dict[str, tuple[DashboardItem, ...]]:
        if node is None:
            return {}
        if not self.expect_map(node, "dashboards", doc, "dashboards"):
            return {}
        result: dict[str, tuple[DashboardItem, ...]] = {}
        for name, items in node.items():
            path = f"dashboards.{name}"
            if not self.expect_list(items, path, node, name):
                continue
            out: list[DashboardItem] = []
            for i, item in enumerate(items):
                ipath = f"{path}[{i}]"
                if not self.expect_map(item, ipath, items, i):
                    continue
                self.unknown_keys(item, DASHBOARD_ITEM_KEYS, ipath)
                label = (
                    self.label(item.get("label"), f"{ipath}.label", item, "label", "")
                    if "label" in item
                    else None
                )
                if "chart" in item:
                    ref = str(item["chart"])
                    entity_name, _, chart_name = ref.partition(".")
                    entity = by_name.get(entity_name)
                    charts = [c.name for c in entity.charts] if entity else []
                    if entity is None or chart_name not in charts:
                        options = [f"{e.name}.{c.name}" for e in by_name.values() for c in e.charts]
                        self.report(
                            "SD-E170",
                            f"{ipath}.chart",
                            N_("'%(ref)s' is not a chart (use entity.chart_name)"),
                            item,
                            "chart",
                            ref=ref,
                            **self.did_you_mean(ref, options),
                        )
                        continue
                    out.append(DashboardItem(entity=entity_name, chart=chart_name, label=label))
                elif "kpi" in item:
                    kpi = self.kpi(str(item["kpi"]), ipath, item, by_name)
                    if kpi is not None:
                        out.append(DashboardItem(entity=kpi[0], kpi=kpi[1], label=label))
                else:
                    self.report(
                        "SD-E102",
                        ipath,
                        N_("a dashboard item needs 'chart' or 'kpi'"),
                        items,
                        i,
                    )
            result[str(name)] = tuple(out)
        return result

    def kpi(
        self, ref: str, path: str, item: dict, by_name: dict[str, EntitySpec]
    ) -> tuple[str, Measure] | None:
        """Parse `entity.count` or `entity.sum:field`."""
        entity_name, _, rest = ref.partition(".")
        func, _, fname = rest.partition(":")
        entity = by_name.get(entity_name)
        ok = entity is not None and func in MEASURES
        if ok and func == "count":
            ok = fname == ""
        elif ok:
            ok = (
                entity is not None
                and entity.has_field(fname)
                and entity.field(fname).type in NUMERIC_TYPES
            )
        if not ok:
            self.report(
                "SD-E171",
                f"{path}.kpi",
                N_("'%(ref)s' is not a KPI; write entity.count or entity.sum:field"),
                item,
                "kpi",
                ref=ref,
            )
            return None
        return entity_name, Measure(func, fname or None)
