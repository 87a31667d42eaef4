"""The spec: the validated, frozen form of a schema YAML that every layer reads.

Nothing here parses YAML or touches a database; `app.schema.build` produces an
`AppSpec` from a loaded document after `app.schema.checks` has found no error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

FIELD_TYPES = (
    "string",
    "text",
    "integer",
    "decimal",
    "boolean",
    "date",
    "datetime",
    "enum",
    "email",
    "phone",
    "url",
    "relation",
    "user",
)
TEXT_TYPES = ("string", "text", "email", "phone", "url", "enum")
# Types whose values a data subject's key can seal (stored as text ciphertext).
SEALABLE_TYPES = ("string", "text", "email", "phone", "url")
NUMERIC_TYPES = ("integer", "decimal")
DATE_TYPES = ("date", "datetime")
ACTIONS = ("read", "create", "update", "delete", "import", "export", "view_sensitive")
ON_DELETE = ("cascade", "set_null", "restrict")
CHART_TYPES = ("pie", "bar", "line", "kpi")
PERIODS = ("day", "week", "month", "quarter", "year")
MEASURES = ("count", "sum", "avg", "min", "max")
SYSTEM_COLUMNS = ("id", "version", "created_at", "updated_at", "created_by", "updated_by")
# Entities the console itself provides; a schema may grant on them but not define them.
SYSTEM_ENTITIES = ("audit_log", "job_run", "backup")

DEFAULT_TIMEZONE = "Asia/Shanghai"

# Default string length where the schema gives none, per type.
DEFAULT_LENGTHS = {"string": 255, "email": 254, "phone": 32, "url": 2048, "enum": 64}


@dataclass(frozen=True)
class Label:
    """A bilingual label; `get` falls back to the other language."""

    en: str
    zh: str

    def get(self, lang: str) -> str:
        if lang == "zh":
            return self.zh or self.en
        return self.en or self.zh

    def __str__(self) -> str:  # pragma: no cover - debugging aid
        return self.en or self.zh


@dataclass(frozen=True)
class Choice:
    key: str
    label: Label


@dataclass(frozen=True)
class RollupSpec:
    """`{type: rollup, of: child.field, agg: ...}`: an aggregate of the child records
    whose relation `via` points at the record, narrowed by `where`."""

    child: str
    field: str  # "id" counts the child records
    agg: str  # count | sum | avg | min | max
    via: str  # the child's relation to this entity
    where: Condition | None = None
    multiply: Decimal | None = None  # points: sum * 0.01


@dataclass(frozen=True)
class ClassifyRule:
    """One rule of `classify:`: the enum gets `value` when `when` holds (None: always)."""

    value: str
    when: Condition | None = None


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    label: Label
    required: bool = False
    unique: bool = False
    default: Any = None
    max_length: int | None = None
    min: Decimal | int | None = None
    max: Decimal | int | None = None
    pattern: str | None = None
    choices: tuple[Choice, ...] = ()
    to: str | None = None
    on_delete: str = "set_null"
    many: bool = False
    sensitive: bool = False
    encrypted: bool = False
    help: Label | None = None
    readonly: bool = False
    precision: int = 12
    scale: int = 2
    currency: str | None = None  # ISO 4217 code of a money decimal (CNY -> ¥1,234.50)
    rollup: RollupSpec | None = None  # `type: rollup`: kept by app.records.rollups
    classify: tuple[ClassifyRule, ...] = ()  # an enum set by rules, first match wins
    renamed_from: str | None = None  # the key it had: its column is renamed, values kept

    @property
    def computed(self) -> bool:
        """True for a value the rules keep (a rollup or a classified enum): never written."""
        return self.rollup is not None or bool(self.classify)

    @property
    def is_relation(self) -> bool:
        return self.type == "relation"

    @property
    def is_many(self) -> bool:
        return self.type == "relation" and self.many

    @property
    def is_foreign_key(self) -> bool:
        """True where the field is stored as a `<name>_id` column."""
        return self.type == "user" or (self.type == "relation" and not self.many)

    @property
    def column_name(self) -> str:
        return f"{self.name}_id" if self.is_foreign_key else self.name

    @property
    def length(self) -> int | None:
        if self.type in DEFAULT_LENGTHS:
            return self.max_length or DEFAULT_LENGTHS[self.type]
        return None

    def choice_label(self, key: Any, lang: str) -> str:
        for choice in self.choices:
            if choice.key == key:
                return choice.label.get(lang)
        return "" if key is None else str(key)


@dataclass(frozen=True)
class Measure:
    func: str = "count"
    field: str | None = None


@dataclass(frozen=True)
class ChartSpec:
    name: str
    type: str
    label: Label
    group_by: str | None = None
    period: str | None = None
    measure: Measure = Measure()


WORKFLOW_COMMENTS = ("optional", "required")


@dataclass(frozen=True)
class ApprovalLevel:
    """One level of an approval: the account a relation path leads to (`by`), or a `role`."""

    by: str | None = None
    role: str | None = None


@dataclass(frozen=True)
class ApprovalSpec:
    """`approval:` of a transition (审批): sequential `levels`, needed where `when` holds;
    while open, the record shows the `pending` state (if given)."""

    levels: tuple[ApprovalLevel, ...]
    when: Condition | None = None
    pending: str | None = None


@dataclass(frozen=True)
class TransitionSpec:
    """One step of a workflow: from one of `sources` to `to`, for `roles` (empty: anyone
    who may update), when the `requires` fields are filled and `when` holds."""

    name: str
    sources: tuple[str, ...]
    to: str
    label: Label
    roles: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    when: Condition | None = None
    comment: str = "optional"  # optional | required
    approval: ApprovalSpec | None = None


@dataclass(frozen=True)
class WorkflowSpec:
    """`workflow:` of an entity: the enum `field` only its transitions change."""

    field: str
    initial: str
    transitions: tuple[TransitionSpec, ...] = ()

    def transition(self, name: str) -> TransitionSpec | None:
        return next((t for t in self.transitions if t.name == name), None)

    def leaving(self, state: str | None) -> tuple[TransitionSpec, ...]:
        """The transitions whose `from` includes `state`."""
        return tuple(t for t in self.transitions if state in t.sources)

    @property
    def pending_states(self) -> frozenset[str]:
        """The states a record holds only while an approval of it is open."""
        return frozenset(t.approval.pending for t in self.transitions
                         if t.approval is not None and t.approval.pending)


@dataclass(frozen=True)
class KanbanSpec:
    """`views.kanban`: one column per choice of the enum `group_by`, cards showing `card`."""

    group_by: str
    card: tuple[str, ...] = ()


@dataclass(frozen=True)
class CalendarSpec:
    """`views.calendar`: records placed on their `date` (to `end`), named by `title`."""

    date: str
    title: str | None = None
    end: str | None = None


@dataclass(frozen=True)
class ViewsSpec:
    """`views:` of an entity: more ways to look at its records (app/views/boards.py)."""

    kanban: KanbanSpec | None = None
    calendar: CalendarSpec | None = None


@dataclass(frozen=True)
class SubjectSpec:
    """`subject:` of an entity: its records are people (数据主体) whose sensitive values are
    sealed under a per-record key; `erase` says what erasing one does (app/privacy)."""

    erase: str = "anonymise"  # anonymise | delete


@dataclass(frozen=True)
class RetentionSpec:
    """`retention:` of an entity (保存期限): records whose `from` date is older than
    `after` (and match `when`) are deleted or anonymised by the scheduler."""

    after: str  # as written: 3y, 18m, 90d, 2w
    months: int = 0
    days: int = 0
    date_field: str = "created_at"
    when: Condition | None = None
    action: str = "anonymise"  # anonymise | delete


@dataclass(frozen=True)
class EntitySpec:
    name: str
    label: Label
    menu: Label
    fields: tuple[FieldSpec, ...]
    title: str | None = None
    list: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    order: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    import_key: str | None = None
    charts: tuple[ChartSpec, ...] = ()
    workflow: WorkflowSpec | None = None
    views: ViewsSpec = ViewsSpec()
    subject: SubjectSpec | None = None
    retention: RetentionSpec | None = None

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    def has_field(self, name: str) -> bool:
        return any(f.name == name for f in self.fields)

    @property
    def tree_field(self) -> FieldSpec | None:
        """The `parent` relation to itself that makes this entity a tree, if any."""
        for f in self.fields:
            if f.name == "parent" and f.is_foreign_key and f.to == self.name:
                return f
        return None

    @property
    def user_field(self) -> FieldSpec | None:
        """The first `user` field (links a record to a login account), if any."""
        return next((f for f in self.fields if f.type == "user"), None)

    def chart(self, name: str) -> ChartSpec:
        for c in self.charts:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no chart {name!r}")

    @property
    def sensitive_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.sensitive)

    @cached_property
    def lookup_fields(self) -> frozenset[str]:
        """Fields looked records up by: search, filters, import key, unique."""
        names = set(self.search) | set(self.filters)
        names |= {f.name for f in self.fields if f.unique}
        if self.import_key:
            names.add(self.import_key)
        return frozenset(names)

    @cached_property
    def sealed_fields(self) -> tuple[FieldSpec, ...]:
        """The fields stored under each record's own key (加密粉碎, app/privacy/keys.py).

        A data subject's encrypted and sensitive text fields; erasing the record
        destroys the key, so every copy of these values (table, audit diffs,
        backups) becomes unreadable. Those used for lookups also keep a keyed
        blind index (`blind_fields`), so equality search, filters, unique and
        the import key still work without the clear value in the database.
        """
        if self.subject is None:
            return ()
        return tuple(f for f in self.fields if f.type in SEALABLE_TYPES
                     and (f.encrypted or f.sensitive))

    @cached_property
    def blind_fields(self) -> tuple[FieldSpec, ...]:
        """Sealed fields used for lookups: each has a `<name>__bi` blind-index column
        (app/privacy/lookup.py)."""
        lookup = self.lookup_fields
        return tuple(f for f in self.sealed_fields if f.name in lookup)

    def is_blind(self, name: str) -> bool:
        return any(f.name == name for f in self.blind_fields)

    @cached_property
    def log_sealed_fields(self) -> tuple[FieldSpec, ...]:
        """A data subject's fields whose audit diffs are sealed: every sensitive or encrypted
        text field, lookups included (the log is a copy; the table is the original)."""
        if self.subject is None:
            return ()
        return tuple(f for f in self.fields if f.type in SEALABLE_TYPES
                     and (f.encrypted or f.sensitive))

    def is_sealed(self, name: str) -> bool:
        return any(f.name == name for f in self.sealed_fields)

    @property
    def class_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))


CONDITION_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "under")


@dataclass(frozen=True)
class Condition:
    """One node of the condition syntax shared by row rules, `when` and `classify`.

    `kind` is "cmp" (the field at `path` compared by `op` with `value`), "and" or
    "or" (over `items`). `value` is a literal, `$user` (the signed-in account),
    `$me` (the record whose `user` field is that account) or `$me.<path>`.
    """

    kind: str
    path: tuple[str, ...] = ()
    op: str = "eq"
    value: Any = None
    items: tuple[Condition, ...] = ()

    def fields(self) -> list[tuple[str, ...]]:
        """Return every field path the condition reads."""
        if self.kind == "cmp":
            return [self.path]
        return [p for item in self.items for p in item.fields()]


@dataclass(frozen=True)
class RowRule:
    """`rows: {entity: <condition>}`: which records of `entity` a role reaches."""

    entity: str
    condition: Condition

    @property
    def owner_field(self) -> str | None:
        """The field a new record is given to make its creator reach it, if one.

        `{owner: $user}` or `{owner: $me}` names `owner`; a path, a literal or a
        compound rule has no such single field.
        """
        c = self.condition
        if c.kind == "cmp" and len(c.path) == 1 and c.op == "eq" and c.value in ("$user", "$me"):
            return c.path[0]
        return None


@dataclass(frozen=True)
class RoleSpec:
    name: str
    label: Label
    grants: dict[str, frozenset[str]] = field(default_factory=dict, hash=False)
    rows: tuple[RowRule, ...] = ()
    mfa: str = "optional"  # "required": members must sign in with a second factor

    def actions_on(self, entity: str) -> frozenset[str]:
        """Return the actions this role may take on `entity` ("*" included)."""
        return self.grants.get(entity, frozenset()) | self.grants.get("*", frozenset())

    def row_rule(self, entity: str) -> RowRule | None:
        for rule in self.rows:
            if rule.entity == entity:
                return rule
        return None


@dataclass(frozen=True)
class DashboardItem:
    """A chart (`entity.chart`) or a KPI (`entity.count`, `entity.sum:field`)."""

    entity: str
    chart: str | None = None
    kpi: Measure | None = None
    label: Label | None = None


@dataclass(frozen=True)
class AppSpec:
    version: int
    title: Label
    default_locale: str
    entities: tuple[EntitySpec, ...]
    roles: tuple[RoleSpec, ...] = ()
    dashboards: dict[str, tuple[DashboardItem, ...]] = field(default_factory=dict, hash=False)
    source: str = ""
    digest: str = ""
    me_entity: str | None = None  # the entity whose `user` field makes a record "$me"
    timezone: str = DEFAULT_TIMEZONE  # `app.timezone`: times are shown in it, stored UTC
    # `reminders:` / `webhooks:` (app/schema/automation.py: ReminderSpec, WebhookSpec)
    reminders: tuple[Any, ...] = ()
    webhooks: tuple[Any, ...] = ()

    def entity(self, name: str) -> EntitySpec:
        for e in self.entities:
            if e.name == name:
                return e
        raise KeyError(f"no entity {name!r}")

    def has_entity(self, name: str) -> bool:
        return any(e.name == name for e in self.entities)

    def role(self, name: str) -> RoleSpec:
        for r in self.roles:
            if r.name == name:
                return r
        raise KeyError(f"no role {name!r}")

    @property
    def stem(self) -> str:
        """Short name of the schema file, used to keep its migrations apart."""
        from pathlib import Path

        return Path(self.source).stem if self.source else "schema"
