"""`reminders:` and `webhooks:` (top-level lists): their specs and their checks.

Reminders (提醒) notify people at a time computed from a record's date:

    reminders:
      - {name: follow_up_due, entity: follow_up, date: next_follow_up, before: 1d, notify: owner}
      - {name: sla, entity: service_request, after: {created_at: 24h},
         when: {status: {in: [new, in_progress]}}, notify: {role: manager}}
      - {name: birthday, entity: customer, date: birthday, yearly: true, notify: owner}

Webhooks (系统集成) POST a signed JSON body after a committed write:

    webhooks:
      - {entity: sales_order, on: [create, transition], url: "https://erp.example/hook",
         secret_env: ERP_HOOK_SECRET}

Codes SD-E210…SD-E219 and SD-W016…SD-W017 (reminders), SD-E220…SD-E227
(webhooks) are reported here; `checks.py` merges `CODES` into its table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.i18n import N_
from app.schema.spec import DATE_TYPES, Condition, EntitySpec, Label, RoleSpec

if TYPE_CHECKING:
    from app.schema.checks import Checker

CODES: dict[str, str] = {
    "SD-E210": "reminders/webhooks is not a list, or an item is not a mapping",
    "SD-E211": "reminder name is missing, not an identifier, or used twice",
    "SD-E212": "reminder names an unknown entity",
    "SD-E213": "reminder date is a missing field or not a date/datetime",
    "SD-E214": "reminder timing: both 'before' and 'after', or 'after' malformed",
    "SD-E215": "reminder duration is not like 30m, 24h, 1d or 2w",
    "SD-E216": "reminder notify path does not lead to a login account",
    "SD-E217": "reminder notifies an unknown role",
    "SD-E218": "reminder condition uses $user or $me (no one is signed in when it runs)",
    "SD-E219": "yearly reminder on a datetime field or with 'after'",
    "SD-W016": "reminder date is not indexed (not in the entity's filters): each pass scans",
    "SD-W017": "reminder notifies a role that may not read the entity",
    "SD-E220": "webhook names an unknown entity",
    "SD-E221": "webhook 'on' is empty or names an unknown event",
    "SD-E222": "webhook on 'transition' for an entity without a workflow",
    "SD-E223": "webhook url is missing or not http(s), or carries a password",
    "SD-E224": "webhook secret_env is missing or not an environment variable name",
    "SD-E225": "webhook name is not an identifier or is used twice",
    "SD-E226": "webhook 'sensitive' is not true or false",
    "SD-E227": "webhook retries is not an integer from 0 to 10",
}

REMINDER_KEYS = ("name", "entity", "date", "before", "after", "yearly", "when", "notify",
                 "label")
WEBHOOK_KEYS = ("name", "entity", "on", "url", "secret_env", "sensitive", "retries")
EVENTS = ("create", "update", "delete", "transition")
DURATION_RE = re.compile(r"^\s*(\d+)\s*(m|h|d|w)\s*$")
UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
ENV_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
INDEXED_SYSTEM = ("created_at",)


@dataclass(frozen=True)
class ReminderSpec:
    """One rule of `reminders:`: when (date + offset, maybe yearly), whom, on which records.

    `offset` is in seconds: negative for `before`, positive for `after`.
    `notify_path` leads to a `user` field or to a record with one (an employee);
    `notify_role` names a role instead.
    """

    name: str
    entity: str
    date: str
    offset: int = 0
    yearly: bool = False
    when: Condition | None = None
    notify_path: tuple[str, ...] = ()
    notify_role: str | None = None
    label: Label | None = None


@dataclass(frozen=True)
class WebhookSpec:
    """One rule of `webhooks:`: POST the record to `url` after these events commit.

    Active only while the environment variable `secret_env` is set (it holds the
    HMAC key); `sensitive: true` sends sensitive fields unmasked.
    """

    name: str
    entity: str
    events: tuple[str, ...]
    url: str
    secret_env: str
    sensitive: bool = False
    retries: int = 5


def parse_duration(value: Any) -> int | None:
    """Seconds of `30m`, `24h`, `1d`, `2w`; None if malformed."""
    match = DURATION_RE.match(str(value)) if isinstance(value, str | int) else None
    if match is None:
        return None
    return int(match.group(1)) * UNITS[match.group(2)]


def _items(checker: Checker, node: Any, key: str, doc: Any) -> list[tuple[int, Any]]:
    if node is None:
        return []
    if not isinstance(node, list):
        checker.report("SD-E210", key, N_("'%(section)s' must be a list of mappings"), doc, key,
                       section=key)
        return []
    out = []
    for i, item in enumerate(node):
        if isinstance(item, dict):
            out.append((i, item))
        else:
            checker.report("SD-E210", f"{key}[{i}]",
                           N_("each item of '%(section)s' must be a mapping"), node, i,
                           section=key)
    return out


def check_reminders(checker: Checker, doc: Any, by_name: dict[str, EntitySpec],
                    roles: list[RoleSpec]) -> tuple[ReminderSpec, ...]:
    """Check `reminders:`; return the valid rules (problems are reported)."""
    result: list[ReminderSpec] = []
    seen: set[str] = set()
    for i, item in _items(checker, doc.get("reminders"), "reminders", doc):
        rule = _ReminderCheck(checker, item, f"reminders[{i}]", by_name, roles).run(seen)
        if rule is not None:
            result.append(rule)
    return tuple(result)


class _ReminderCheck:
    """The checks of one reminder, one method per part."""

    def __init__(self, checker: Checker, item: Any, path: str, by_name: dict[str, EntitySpec],
                 roles: list[RoleSpec]):
        self.c = checker
        self.item = item
        self.path = path
        self.by_name = by_name
        self.roles = roles
        self.ok = True

    def fail(self, code: str, key: str, message: str, node: Any = None, **params: Any) -> None:
        self.ok = False
        node = self.item if node is None else node
        self.c.report(code, f"{self.path}.{key}", message, node, key if key in node else None,
                      **params)

    def run(self, seen: set[str]) -> ReminderSpec | None:
        item = self.item
        self.c.unknown_keys(item, REMINDER_KEYS, self.path)
        name = item.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name) or name in seen:
            self.fail("SD-E211", "name", N_("a reminder needs a unique name (lowercase letters, "
                                            "digits, _), not '%(value)s'"), value=name)
        else:
            seen.add(name)
        entity = self.entity()
        if entity is None:
            return None
        date, offset = self.timing(entity)
        yearly = self.yearly(entity, date)
        when = self.condition(entity)
        notify_path, notify_role = self.recipients(entity)
        label = None
        if "label" in item:
            label = self.c.label(item["label"], f"{self.path}.label", item, "label", str(name))
        if not self.ok or date is None:
            return None
        self.warn_index(entity, date)
        return ReminderSpec(str(name), entity.name, date, offset, yearly, when,
                            notify_path, notify_role, label)

    def entity(self) -> EntitySpec | None:
        name = self.item.get("entity")
        if name not in self.by_name:
            self.fail("SD-E212", "entity", N_("'%(value)s' is not an entity"), value=name,
                      **self.c.did_you_mean(name, list(self.by_name)))
            return None
        return self.by_name[name]

    def timing(self, entity: EntitySpec) -> tuple[str | None, int]:
        item = self.item
        date = item.get("date")
        after = item.get("after")
        if "before" in item and "after" in item:
            self.fail("SD-E214", "after", N_("give 'before' or 'after', not both"))
            return None, 0
        if isinstance(after, dict):
            if date is not None or len(after) != 1:
                self.fail("SD-E214", "after", N_("'after' as a mapping names exactly one date "
                                                 "field, e.g. after: {created_at: 24h}, and "
                                                 "then no 'date'"))
                return None, 0
            date, after = next(iter(after.items()))
        if date is None:
            self.fail("SD-E213", "date", N_("a reminder needs 'date' (a date field) or "
                                            "after: {field: duration}"))
            return None, 0
        if not self.date_field(entity, str(date)):
            return None, 0
        offset = 0
        for key, sign, value in (("before", -1, item.get("before")), ("after", 1, after)):
            if value is None:
                continue
            seconds = parse_duration(value)
            if seconds is None:
                self.fail("SD-E215", key, N_("'%(value)s' is not a duration like 30m, 24h, 1d "
                                             "or 2w"), value=value)
                return None, 0
            offset = sign * seconds
        return str(date), offset

    def date_field(self, entity: EntitySpec, name: str) -> bool:
        if name in ("created_at", "updated_at"):
            return True
        f = entity.field(name) if entity.has_field(name) else None
        if f is None or f.type not in DATE_TYPES:
            options = [x.name for x in entity.fields if x.type in DATE_TYPES]
            self.fail("SD-E213", "date", N_("'%(value)s' is not a date field of %(entity)s "
                                            "(date fields: %(options)s)"),
                      value=name, entity=entity.name, options=", ".join(options) or "—",
                      **self.c.did_you_mean(name, options))
            return False
        return True

    def yearly(self, entity: EntitySpec, date: str | None) -> bool:
        value = self.item.get("yearly", False)
        if value is False or date is None:
            return False
        is_date = entity.has_field(date) and entity.field(date).type == "date"
        if value is not True or not is_date or self.item.get("after") is not None:
            self.fail("SD-E219", "yearly", N_("'yearly: true' needs a date field (not a "
                                              "datetime) and no 'after'"))
            return False
        return True

    def condition(self, entity: EntitySpec) -> Condition | None:
        node = self.item.get("when")
        if node is None:
            return None
        from app.schema.checks import me_entity
        from app.schema.conditions import ConditionChecker

        before = len(self.c.problems)
        cond = ConditionChecker(self.c, self.by_name, me_entity(self.by_name)).parse(
            node, entity, f"{self.path}.when", self.item, "when")
        if len(self.c.problems) > before and cond is None:
            self.ok = False
            return None
        if cond is not None and _uses_user(cond):
            self.fail("SD-E218", "when", N_("a reminder runs with no one signed in: its "
                                            "condition cannot use $user or $me"))
            return None
        return cond

    def recipients(self, entity: EntitySpec) -> tuple[tuple[str, ...], str | None]:
        node = self.item.get("notify")
        role_names = [r.name for r in self.roles]
        if isinstance(node, dict) and set(node) == {"role"}:
            role = node["role"]
            if role not in role_names:
                self.fail("SD-E217", "notify", N_("'%(value)s' is not a role"), value=role,
                          **self.c.did_you_mean(role, role_names))
                return (), None
            spec = next(r for r in self.roles if r.name == role)
            if "read" not in spec.actions_on(entity.name):
                self.c.report("SD-W017", f"{self.path}.notify",
                              N_("role '%(role)s' may not read %(entity)s: its members are "
                                 "told, but cannot open the record"),
                              self.item, "notify", role=role, entity=entity.name)
            return (), str(role)
        if isinstance(node, str) and node and user_path_ok(entity, node, self.by_name):
            return tuple(node.split(".")), None
        self.fail("SD-E216", "notify", N_("notify needs a path to a login account (a user "
                                          "field, or a record with one, e.g. owner) or "
                                          "{role: <role>}, not '%(value)s'"), value=node)
        return (), None

    def warn_index(self, entity: EntitySpec, date: str) -> None:
        if date in INDEXED_SYSTEM or date in entity.filters or self.item.get("yearly"):
            return
        self.c.report("SD-W016", f"{self.path}.date",
                      N_("'%(field)s' is not in the filters of %(entity)s, so it has no index: "
                         "every reminder pass reads the whole table; add it to 'filters'"),
                      self.item, "date" if "date" in self.item else "after",
                      field=date, entity=entity.name)


def user_path_ok(entity: EntitySpec, dotted: str, by_name: dict[str, EntitySpec]) -> bool:
    """True when `dotted` walks single relations to a user field or a record with one."""
    current = entity
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if part in ("created_by", "updated_by") and i == len(parts) - 1:
            return True
        if not current.has_field(part):
            return False
        f = current.field(part)
        if f.type == "user":
            return i == len(parts) - 1
        if not f.is_relation or f.is_many or f.to not in by_name:
            return False
        current = by_name[f.to]
    return current.user_field is not None


def _uses_user(cond: Condition) -> bool:
    if cond.kind != "cmp":
        return any(_uses_user(c) for c in cond.items)
    value = cond.value
    return isinstance(value, str) and (value in ("$user", "$me") or value.startswith("$me."))


def check_webhooks(checker: Checker, doc: Any, by_name: dict[str, EntitySpec]
                   ) -> tuple[WebhookSpec, ...]:
    """Check `webhooks:`; return the valid hooks (problems are reported)."""
    result: list[WebhookSpec] = []
    seen: set[str] = set()
    for i, item in _items(checker, doc.get("webhooks"), "webhooks", doc):
        hook = _webhook(checker, item, f"webhooks[{i}]", by_name, seen, i)
        if hook is not None:
            result.append(hook)
    return tuple(result)


def _webhook(checker: Checker, item: Any, path: str, by_name: dict[str, EntitySpec],
             seen: set[str], index: int) -> WebhookSpec | None:
    checker.unknown_keys(item, WEBHOOK_KEYS, path)
    problems = len(checker.problems)

    def fail(code: str, key: str, message: str, **params: Any) -> None:
        checker.report(code, f"{path}.{key}", message, item, key if key in item else None,
                       **params)

    entity = by_name.get(item.get("entity"))
    if entity is None:
        fail("SD-E220", "entity", N_("'%(value)s' is not an entity"), value=item.get("entity"),
             **checker.did_you_mean(item.get("entity"), list(by_name)))
    events = _events(item, fail)
    if entity is not None and "transition" in events and entity.workflow is None:
        fail("SD-E222", "on", N_("%(entity)s has no workflow, so it has no 'transition' "
                                 "event"), entity=entity.name)
    url = item.get("url")
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url) or (
            "@" in url.split("/")[2] if url.count("/") >= 2 else False):
        fail("SD-E223", "url", N_("url must be an http:// or https:// address without a "
                                  "password in it (the secret goes in secret_env)"))
    secret_env = item.get("secret_env")
    if not isinstance(secret_env, str) or not ENV_RE.match(secret_env):
        fail("SD-E224", "secret_env", N_("secret_env names the environment variable that "
                                         "holds the signing secret, e.g. ERP_HOOK_SECRET"))
    name = item.get("name", f"{item.get('entity')}_{index}")
    if not isinstance(name, str) or not NAME_RE.match(name) or name in seen:
        fail("SD-E225", "name", N_("a webhook needs a unique name (lowercase letters, digits, "
                                   "_), not '%(value)s'"), value=name)
    seen.add(str(name))
    sensitive = item.get("sensitive", False)
    if not isinstance(sensitive, bool):
        fail("SD-E226", "sensitive", N_("'sensitive' is true or false"))
    retries = item.get("retries", 5)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
        fail("SD-E227", "retries", N_("'retries' is a whole number from 0 to 10"))
    if len(checker.problems) > problems and any(
            p.is_error for p in checker.problems[problems:]) or entity is None:
        return None
    return WebhookSpec(str(name), entity.name, events, str(url), str(secret_env),
                       bool(sensitive), int(retries))


def _events(item: Any, fail: Any) -> tuple[str, ...]:
    node = item.get("on")
    if isinstance(node, str):
        node = [node]
    if not isinstance(node, list) or not node or any(e not in EVENTS for e in node):
        fail("SD-E221", "on", N_("'on' lists one or more of: %(events)s"),
             events=", ".join(EVENTS))
        return ()
    return tuple(dict.fromkeys(str(e) for e in node))
