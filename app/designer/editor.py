"""Designer edits as YAML text transformations (设计器编辑): small pure functions.

Every designer control turns into one of these functions over a ruamel
round-trip document, so the admin's change is a new YAML text that keeps the
file's comments, key order and flow style; the text then goes through the one
checked, guarded path (app/designer/versions.py). The functions never decide
whether a schema is valid — the schema checker does, and its coded problems
are shown next to the control (`control_for`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from app.i18n import N_
from app.schema.checks import GROUPABLE
from app.schema.spec import ACTIONS, DATE_TYPES, FIELD_TYPES, MEASURES, NUMERIC_TYPES

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# Field options in the order they are written; the editor never writes others.
FIELD_OPTIONS = (
    "type", "to", "many", "on_delete", "max_length", "precision", "scale", "currency", "min",
    "max", "pattern", "required", "unique", "default", "readonly", "sensitive", "encrypted",
    "label", "help", "choices", "renamed_from",
)
FLAG_OPTIONS = ("required", "unique", "many", "readonly", "sensitive", "encrypted")
LIST_SETTINGS = ("list", "search", "filters", "order", "children")
ROW_OPERATORS = ("eq", "ne", "in", "contains", "under")
# Chart and view keys in the order they are written (the checker's own lists).
CHART_KEYS = ("name", "type", "group_by", "period", "measure", "label")
# Field types the chart form offers to group by (docs/schema.md, Charts).
GROUP_TYPES = ("enum", "boolean", "relation", "user", "date", "datetime")
VIEW_KEYS = {"kanban": ("group_by", "card"), "calendar": ("date", "title", "end")}


class EditError(ValueError):
    """An edit that cannot be made (unknown entity, bad name); the message says which.

    `message` is a msgid with `%(name)s` placeholders and `params` their values, so
    the page shows it in the admin's language; `str()` is the English text.
    """

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.width = 4096
    yaml.preserve_quotes = True
    return yaml


def load(text: str) -> CommentedMap:
    """Parse a schema text into a round-trip document (comments and order kept)."""
    doc = _yaml().load(text)
    if not isinstance(doc, CommentedMap):
        raise EditError(N_("the schema text is not a mapping"))
    return doc


def dump(doc: CommentedMap) -> str:
    """Write the document back as YAML text."""
    out = io.StringIO()
    _yaml().dump(doc, out)
    return out.getvalue()


def edit(text: str, change: Any, *args: Any, **kwargs: Any) -> str:
    """Apply one edit function to a schema text and return the new text."""
    doc = load(text)
    change(doc, *args, **kwargs)
    return dump(doc)


def check_name(name: str) -> str:
    """Return `name` if it is a valid key (lower case, digits, underscores), else raise."""
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise EditError(N_("'%(name)s' is not a valid name: use a-z, 0-9 and _, starting with a "
                            "letter"), name=name)
    return name


def _flow(mapping: Mapping[str, Any]) -> CommentedMap:
    """A mapping written in flow style ({a: 1, b: 2}), like the shipped schemas."""
    out = CommentedMap(mapping)
    out.fa.set_flow_style()
    return out


def _flow_seq(items: Iterable[Any]) -> CommentedSeq:
    out = CommentedSeq(list(items))
    out.fa.set_flow_style()
    return out


def label(en: str, zh: str) -> CommentedMap:
    """A bilingual label {en, zh}; an empty side is left out (the checker warns)."""
    values = {k: v.strip() for k, v in (("en", en or ""), ("zh", zh or "")) if v and v.strip()}
    return _flow(values)


# --- entities -----------------------------------------------------------------------


def entities(doc: CommentedMap) -> CommentedMap:
    if not isinstance(doc.get("entities"), CommentedMap):
        doc["entities"] = CommentedMap()
    return doc["entities"]


def entity(doc: CommentedMap, name: str) -> CommentedMap:
    """The entity's mapping, or EditError."""
    found = entities(doc).get(name)
    if not isinstance(found, CommentedMap):
        raise EditError(N_("no entity '%(name)s'"), name=name)
    return found


def add_entity(doc: CommentedMap, name: str, label_en: str, label_zh: str,
               menu_en: str = "", menu_zh: str = "", title: str = "name") -> None:
    """Add an entity with one required string field that names its records."""
    name = check_name(name)
    title = check_name(title or "name")
    if name in entities(doc):
        raise EditError(N_("entity '%(name)s' exists"), name=name)
    body = CommentedMap()
    body["label"] = label(label_en, label_zh)
    if menu_en or menu_zh:
        body["menu"] = label(menu_en, menu_zh)
    body["title"] = title
    body["fields"] = CommentedMap()
    body["fields"][title] = _flow({"type": "string", "max_length": 100, "required": True,
                                   "label": label("Name", "名称")})
    body["list"] = _flow_seq([title])
    body["search"] = _flow_seq([title])
    entities(doc)[name] = body


def set_entity(doc: CommentedMap, name: str, *, label_en: str, label_zh: str, menu_en: str = "",
               menu_zh: str = "", title: str | None = None) -> None:
    """Rename an entity's labels and menu; set its title field."""
    body = entity(doc, name)
    body["label"] = label(label_en, label_zh)
    if menu_en or menu_zh:
        body["menu"] = label(menu_en, menu_zh)
    elif "menu" in body:
        del body["menu"]
    if title:
        body["title"] = title


def remove_entity(doc: CommentedMap, name: str) -> None:
    """Remove an entity and every mention of it in roles, children and dashboards.

    Relations of other entities to it are left: the checker names them, so the
    admin decides what becomes of them.
    """
    entity(doc, name)
    del entities(doc)[name]
    for other in entities(doc).values():
        children = other.get("children") if isinstance(other, Mapping) else None
        if isinstance(children, list) and name in children:
            children.remove(name)
    for role in (doc.get("roles") or {}).values():
        for key in ("grants", "rows"):
            part = role.get(key) if isinstance(role, Mapping) else None
            if isinstance(part, Mapping) and name in part:
                del part[name]
    for items in (doc.get("dashboards") or {}).values():
        if isinstance(items, list):
            for item in [i for i in items if _dashboard_entity(i) == name]:
                items.remove(item)


def _dashboard_entity(item: Any) -> str | None:
    if not isinstance(item, Mapping):
        return None
    ref = item.get("chart") or item.get("kpi") or ""
    return str(ref).split(".", 1)[0] or None


# --- fields ---------------------------------------------------------------------------


def fields(doc: CommentedMap, entity_name: str) -> CommentedMap:
    body = entity(doc, entity_name)
    if not isinstance(body.get("fields"), CommentedMap):
        body["fields"] = CommentedMap()
    return body["fields"]


def _clean_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options worth writing: no empty values, no false flags, known keys in order."""
    out: dict[str, Any] = {}
    for key in FIELD_OPTIONS:
        value = options.get(key)
        if value is None or value == "" or value == {} or value == []:
            continue
        if key in FLAG_OPTIONS and value is not True:
            continue
        if key in ("label", "help") and isinstance(value, Mapping):
            value = label(value.get("en", ""), value.get("zh", ""))
            if not value:
                continue
        out[key] = value
    return out


def set_field(doc: CommentedMap, entity_name: str, name: str, options: Mapping[str, Any]) -> None:
    """Add field `name` or replace its options (keeping its place and any option the form lacks).

    `options` holds what the field form edits; keys the form does not know
    (rollup `of`, `classify`, ...) stay as they were.
    """
    name = check_name(name)
    if options.get("type") not in FIELD_TYPES and options.get("type") is not None:
        raise EditError(N_("unknown field type '%(type)s'"), type=options.get("type"))
    all_fields = fields(doc, entity_name)
    clean = _clean_options(options)
    old = all_fields.get(name)
    if not isinstance(old, CommentedMap):
        all_fields[name] = _flow(clean)
        return
    for key in FIELD_OPTIONS:
        if key in clean:
            old[key] = clean[key]
        elif key in old and key in options:
            del old[key]


def rename_field_label(doc: CommentedMap, entity_name: str, name: str, en: str, zh: str) -> None:
    field_map = fields(doc, entity_name).get(name)
    if not isinstance(field_map, CommentedMap):
        raise EditError(N_("no field '%(name)s'"), name=f"{entity_name}.{name}")
    field_map["label"] = label(en, zh)


def rename_field(doc: CommentedMap, entity_name: str, old: str, new: str,
                 applied: Iterable[str] | None = None) -> None:
    """Rename field `old` of an entity to `new`, keeping its place, its comment and its values.

    The field gets `renamed_from: <its column>` (`_set_renamed_from`; `applied`: the
    entity's field names in the applied schema), so the migration renames the column
    instead of dropping it. Every mention follows
    (`Renamer`): the entity's list settings, title, import key, charts, views and
    workflow; paths through relations in conditions, row rules, approvals, rollups and
    reminders of any entity; KPIs on dashboards.
    """
    from app.schema.loader import check_text

    new = check_name(new)
    all_fields = fields(doc, entity_name)
    if old not in all_fields:
        raise EditError(N_("no field '%(name)s'"), name=f"{entity_name}.{old}")
    if new in all_fields:
        raise EditError(N_("%(entity)s already has a field '%(name)s'"),
                        entity=entity_name, name=new)
    spec, _problems = check_text(dump(doc), "schema.yaml")  # to follow relations
    if old == "parent" and spec is not None and spec.entity(entity_name).tree_field is not None:
        raise EditError(N_("a tree's link to its parent must be called 'parent'"))
    position = list(all_fields).index(old)
    options = all_fields[old]
    comment = all_fields.ca.items.pop(old, None)
    del all_fields[old]
    all_fields.insert(position, new, options)
    if comment is not None:
        all_fields.ca.items[new] = comment
    if isinstance(options, CommentedMap):
        _set_renamed_from(options, old, None if applied is None else set(applied))
    Renamer(spec, entity_name, old, new).document(doc)


def _set_renamed_from(options: CommentedMap, old: str, applied: set[str] | None) -> None:
    """`renamed_from` names the field's column in the database: `old` if the applied schema
    has it; an earlier `renamed_from` if that one is applied (renamed twice in one draft);
    nothing for a field not applied yet. Without `applied` (a plain text edit): `old`,
    unless the field already says where it came from."""
    earlier = options.get("renamed_from")
    if applied is None:
        column = earlier or old
    elif old in applied:
        column = old
    else:
        column = earlier if earlier in applied else None
    if column is None:
        options.pop("renamed_from", None)
    else:
        options["renamed_from"] = column


class Renamer:
    """Rewrites every mention of one field in a schema document (see `rename_field`)."""

    # entity keys whose values are lists of the entity's own field names
    NAME_LISTS = ("list", "search", "filters", "order", "card")
    NAME_KEYS = ("title", "import_key", "group_by", "date", "end", "field")

    def __init__(self, spec: Any, entity_name: str, old: str, new: str) -> None:
        self.spec, self.target, self.old, self.new = spec, entity_name, old, new

    def document(self, doc: CommentedMap) -> None:
        for name, body in entities(doc).items():
            if isinstance(body, CommentedMap):
                self.entity(name, body)
        for role in (doc.get("roles") or {}).values():
            rows = role.get("rows") if isinstance(role, Mapping) else None
            for name, rule in (rows or {}).items():
                rows[name] = self.condition(name, rule)
        for reminder in doc.get("reminders") or []:
            if isinstance(reminder, CommentedMap):
                self.reminder(reminder)
        for items in (doc.get("dashboards") or {}).values():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, CommentedMap) and isinstance(item.get("kpi"), str):
                    item["kpi"] = self.kpi(item["kpi"])

    def path(self, entity_name: str | None, dotted: str) -> str:
        """`a.b.c` read from `entity_name`, with the renamed hop replaced."""
        hops = dotted.split(".")
        current = entity_name
        for i, hop in enumerate(hops):
            if current == self.target and hop == self.old:
                hops[i] = self.new
            entity = self._entity(current)
            found = next((f for f in entity.fields if f.name == hop), None) if entity else None
            current = found.to if found is not None and found.is_relation else None
        return ".".join(hops)

    def condition(self, entity_name: str | None, node: Any) -> Any:
        """A condition's keys are paths from `entity_name`; `and`/`or` hold conditions."""
        if isinstance(node, CommentedSeq):
            for i, item in enumerate(node):
                node[i] = self.condition(entity_name, item)
        elif isinstance(node, CommentedMap):
            for key in list(node):
                value = node[key]
                if key in ("and", "or"):
                    node[key] = self.condition(entity_name, value)
                    continue
                node[key] = value = self.operand(value)
                renamed = self.path(entity_name, str(key))
                if renamed != key:
                    position = list(node).index(key)
                    del node[key]
                    node.insert(position, renamed, value)
        return node

    def operand(self, value: Any) -> Any:
        """`$me.<path>` in a comparison is a path from the signed-in user's own record."""
        if isinstance(value, str) and value.startswith("$me."):
            me = getattr(self.spec, "me_entity", None)
            return "$me." + self.path(me, value[4:])
        if isinstance(value, CommentedMap):
            for op in list(value):
                value[op] = self.operand(value[op])
        elif isinstance(value, CommentedSeq):
            for i, item in enumerate(value):
                value[i] = self.operand(item)
        return value

    def entity(self, name: str, body: CommentedMap) -> None:
        own = name == self.target
        for key in (self.NAME_LISTS if own else ()):
            items = body.get(key)
            if isinstance(items, list):
                for i, item in enumerate(items):
                    items[i] = self._name(item)
        for key in (self.NAME_KEYS if own else ()):
            if isinstance(body.get(key), str):
                body[key] = self._name(body[key])
        for f in (body.get("fields") or {}).values():
            if isinstance(f, CommentedMap):
                self.field(name, f)
        for chart in body.get("charts") or []:
            if isinstance(chart, CommentedMap) and own:
                self.chart(chart)
        for view in (body.get("views") or {}).values():
            if isinstance(view, CommentedMap) and own:
                self._named(view)
        if isinstance(body.get("workflow"), CommentedMap):
            self.workflow(name, body["workflow"])
        retention = body.get("retention")
        if isinstance(retention, CommentedMap) and "when" in retention:
            retention["when"] = self.condition(name, retention["when"])

    def field(self, entity_name: str, f: CommentedMap) -> None:
        for rule in f.get("classify") or []:
            if isinstance(rule, CommentedMap) and "when" in rule:
                rule["when"] = self.condition(entity_name, rule["when"])
        of = f.get("of")
        if isinstance(of, str):
            child, _, source = of.partition(".")
            if child == self.target and source == self.old:
                f["of"] = f"{child}.{self.new}"
            if "where" in f:
                f["where"] = self.condition(child, f["where"])
            if isinstance(f.get("via"), str) and child == self.target:
                f["via"] = self._name(f["via"])

    def chart(self, chart: CommentedMap) -> None:
        if isinstance(chart.get("group_by"), str):
            chart["group_by"] = self._name(chart["group_by"])
        measure = chart.get("measure")
        if isinstance(measure, CommentedMap):
            for key in list(measure):
                if isinstance(measure[key], str):
                    measure[key] = self._name(measure[key])

    def workflow(self, entity_name: str, flow: CommentedMap) -> None:
        if entity_name == self.target and isinstance(flow.get("field"), str):
            flow["field"] = self._name(flow["field"])
        for step in flow.get("transitions") or []:
            if not isinstance(step, CommentedMap):
                continue
            if entity_name == self.target and isinstance(step.get("requires"), list):
                for i, item in enumerate(step["requires"]):
                    step["requires"][i] = self._name(item)
            if "when" in step:
                step["when"] = self.condition(entity_name, step["when"])
            approval = step.get("approval")
            levels = approval.get("levels") if isinstance(approval, CommentedMap) else approval
            if isinstance(approval, CommentedMap) and "when" in approval:
                approval["when"] = self.condition(entity_name, approval["when"])
            for level in levels if isinstance(levels, list) else []:
                if isinstance(level, CommentedMap) and isinstance(level.get("by"), str):
                    level["by"] = self.path(entity_name, level["by"])

    def reminder(self, reminder: CommentedMap) -> None:
        name = reminder.get("entity")
        if name == self.target and isinstance(reminder.get("date"), str):
            reminder["date"] = self._name(reminder["date"])
        if isinstance(reminder.get("notify"), str):
            reminder["notify"] = self.path(name, reminder["notify"])
        for key in ("when", "after", "before"):
            if isinstance(reminder.get(key), CommentedMap):
                reminder[key] = self.condition(name, reminder[key])

    def kpi(self, ref: str) -> str:
        """`entity.sum:field` on a dashboard."""
        if ref.startswith(f"{self.target}.") and ref.endswith(f":{self.old}"):
            return ref[: -len(self.old)] + self.new
        return ref

    def _named(self, view: CommentedMap) -> None:
        for key in self.NAME_KEYS:
            if isinstance(view.get(key), str):
                view[key] = self._name(view[key])
        if isinstance(view.get("card"), list):
            for i, item in enumerate(view["card"]):
                view["card"][i] = self._name(item)

    def _name(self, value: Any) -> Any:
        """The field's own name, or `-name` (a descending order)."""
        if not isinstance(value, str):
            return value
        for prefix in ("", "-"):
            if value == prefix + self.old:
                return prefix + self.new
        return value

    def _entity(self, name: str | None) -> Any:
        return next((e for e in self.spec.entities if e.name == name), None) if (
            self.spec is not None and name) else None


def remove_field(doc: CommentedMap, entity_name: str, name: str) -> None:
    """Remove a field and its mentions in the entity's list settings and import key."""
    all_fields = fields(doc, entity_name)
    if name not in all_fields:
        raise EditError(N_("no field '%(name)s'"), name=f"{entity_name}.{name}")
    del all_fields[name]
    body = entity(doc, entity_name)
    for key in LIST_SETTINGS:
        items = body.get(key)
        if isinstance(items, list):
            for item in [i for i in items if str(i).lstrip("-") == name]:
                items.remove(item)
    if body.get("import_key") == name:
        del body["import_key"]
    for chart in [c for c in body.get("charts") or [] if _chart_uses(c, name)]:
        remove_chart(doc, entity_name, chart["name"])
    for kind, view in list((body.get("views") or {}).items()):
        if isinstance(view, Mapping) and name in (view.get("group_by"), view.get("date")):
            set_view(doc, entity_name, kind, None)


def _chart_uses(chart: Any, field_name: str) -> bool:
    """True when a chart groups by or measures `field_name` (it goes with the field)."""
    if not isinstance(chart, Mapping):
        return False
    measure = chart.get("measure")
    measured = list(measure.values()) if isinstance(measure, Mapping) else []
    return chart.get("group_by") == field_name or field_name in measured


# --- enum choices ---------------------------------------------------------------------


def _choices(doc: CommentedMap, entity_name: str, field_name: str) -> CommentedMap:
    field_map = fields(doc, entity_name).get(field_name)
    if not isinstance(field_map, CommentedMap):
        raise EditError(N_("no field '%(name)s'"), name=f"{entity_name}.{field_name}")
    if not isinstance(field_map.get("choices"), CommentedMap):
        field_map["choices"] = CommentedMap()
    return field_map["choices"]


def set_choice(doc: CommentedMap, entity_name: str, field_name: str, key: str, en: str,
               zh: str) -> None:
    """Add an enum choice at the end, or rename the labels of an existing one."""
    key = check_name(key)
    _choices(doc, entity_name, field_name)[key] = label(en, zh)


def remove_choice(doc: CommentedMap, entity_name: str, field_name: str, key: str) -> None:
    choices = _choices(doc, entity_name, field_name)
    if key not in choices:
        raise EditError(N_("no choice '%(name)s'"), name=key)
    del choices[key]


def reorder_choices(doc: CommentedMap, entity_name: str, field_name: str,
                    keys: list[str]) -> None:
    """Put the choices in the order of `keys` (keys not named keep their order, at the end)."""
    choices = _choices(doc, entity_name, field_name)
    order = [k for k in keys if k in choices] + [k for k in choices if k not in keys]
    items = [(k, choices[k]) for k in order]
    for key in list(choices):
        del choices[key]
    for key, value in items:
        choices[key] = value


# --- list settings, import key, charts, views ----------------------------------------


def set_list_setting(doc: CommentedMap, entity_name: str, key: str, values: list[str]) -> None:
    """Set `list`, `search`, `filters`, `order` or `children`; an empty list removes it."""
    if key not in LIST_SETTINGS:
        raise EditError(N_("unknown list setting '%(name)s'"), name=key)
    body = entity(doc, entity_name)
    values = [v for v in (str(v).strip() for v in values) if v]
    if values:
        body[key] = _flow_seq(values)
    elif key in body:
        del body[key]


def set_import_key(doc: CommentedMap, entity_name: str, field_name: str | None) -> None:
    body = entity(doc, entity_name)
    if field_name:
        body["import_key"] = field_name
    elif "import_key" in body:
        del body["import_key"]


def set_chart(doc: CommentedMap, entity_name: str, chart: Mapping[str, Any]) -> None:
    """Add a chart, or replace the one with the same `name`."""
    name = check_name(str(chart.get("name") or ""))
    charts = _charts(doc, entity_name)
    if any(isinstance(c, Mapping) and c.get("name") == name for c in charts):
        replace_chart(doc, entity_name, name, chart)
    else:
        add_chart(doc, entity_name, chart)


def remove_chart(doc: CommentedMap, entity_name: str, name: str,
                 index: int | None = None) -> None:
    """Remove a chart and the dashboard tiles that show it.

    With `index`, only the chart at that place goes when it has that name (one of
    two charts given the same name, SD-E166); the tiles stay while a chart of the
    name remains.
    """
    body = entity(doc, entity_name)
    charts = body.get("charts") or []
    places = [i for i, c in enumerate(charts) if isinstance(c, Mapping) and c.get("name") == name]
    if index is not None and index in places:
        places = [index]
    for place in reversed(places):
        del charts[place]
    if not charts and "charts" in body:
        del body["charts"]
    if any(isinstance(c, Mapping) and c.get("name") == name for c in charts):
        return
    ref = f"{entity_name}.{name}"
    for items in (doc.get("dashboards") or {}).values():
        if isinstance(items, list):
            for item in [i for i in items if isinstance(i, Mapping) and i.get("chart") == ref]:
                items.remove(item)


def _chart_map(chart: Mapping[str, Any]) -> CommentedMap:
    """A chart as the flow mapping the schemas write: known keys in the format's order.

    Empty values are left out; `measure` is `{sum: field}` (a count is the default,
    so `count` is left out too); `label` is bilingual.
    """
    values: dict[str, Any] = {}
    for key in CHART_KEYS:
        value = chart.get(key)
        if value in (None, "", {}, "count"):
            continue
        if key == "label" and isinstance(value, Mapping):
            value = label(value.get("en", ""), value.get("zh", ""))
            if not value:
                continue
        elif key == "measure" and isinstance(value, Mapping):
            value = _flow(value)
        values[key] = value
    return _flow(values)


def _charts(doc: CommentedMap, entity_name: str) -> CommentedSeq:
    body = entity(doc, entity_name)
    if not isinstance(body.get("charts"), list):
        body["charts"] = CommentedSeq()
    return body["charts"]


def _chart_index(charts: list[Any], name: str) -> int:
    for index, old in enumerate(charts):
        if isinstance(old, Mapping) and old.get("name") == name:
            return index
    raise EditError(N_("no chart '%(name)s'"), name=name)


def add_chart(doc: CommentedMap, entity_name: str, chart: Mapping[str, Any]) -> None:
    """Add a chart at the end of the entity's charts.

    A name already used is written all the same: the checker names it (SD-E166)
    next to the chart form, and the draft cannot be applied until it is fixed.
    """
    check_name(str(chart.get("name") or ""))
    _charts(doc, entity_name).append(_chart_map(chart))


def replace_chart(doc: CommentedMap, entity_name: str, old_name: str,
                  chart: Mapping[str, Any]) -> None:
    """Replace chart `old_name` in its place; a new name is followed by the dashboards."""
    name = check_name(str(chart.get("name") or ""))
    charts = _charts(doc, entity_name)
    charts[_chart_index(charts, old_name)] = _chart_map(chart)
    if name != old_name:
        old_ref, new_ref = f"{entity_name}.{old_name}", f"{entity_name}.{name}"
        for items in (doc.get("dashboards") or {}).values():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, Mapping) and item.get("chart") == old_ref:
                    item["chart"] = new_ref


def set_view(doc: CommentedMap, entity_name: str, kind: str,
             options: Mapping[str, Any] | None) -> None:
    """Set the kanban or calendar view of an entity; None removes it.

    Keys are written in the format's order (`group_by, card` / `date, title, end`);
    empty ones are left out.
    """
    if kind not in VIEW_KEYS:
        raise EditError(N_("unknown view '%(name)s' (kanban or calendar)"), name=kind)
    body = entity(doc, entity_name)
    views = body.get("views")
    if options:
        if not isinstance(views, CommentedMap):
            body["views"] = views = CommentedMap()
        values = {k: options[k] for k in VIEW_KEYS[kind] if options.get(k) not in (None, "", [])}
        if isinstance(values.get("card"), list):
            values["card"] = _flow_seq(values["card"])
        views[kind] = _flow(values)
    elif isinstance(views, CommentedMap) and kind in views:
        del views[kind]
        if not views:
            del body["views"]


def remove_view(doc: CommentedMap, entity_name: str, kind: str) -> None:
    """Remove the entity's kanban or calendar view."""
    set_view(doc, entity_name, kind, None)


def set_dashboard(doc: CommentedMap, name: str, items: list[Mapping[str, Any]]) -> None:
    """Replace a dashboard's tiles (`{chart: e.c}` or `{kpi: e.count, label: ...}`)."""
    if not isinstance(doc.get("dashboards"), CommentedMap):
        doc["dashboards"] = CommentedMap()
    doc["dashboards"][check_name(name)] = CommentedSeq([_flow(i) for i in items])


def _dashboard(doc: CommentedMap, name: str, create: bool = False) -> CommentedSeq:
    boards = doc.get("dashboards")
    if not isinstance(boards, CommentedMap):
        if not create:
            raise EditError(N_("no dashboard '%(name)s'"), name=name)
        doc["dashboards"] = boards = CommentedMap()
    if not isinstance(boards.get(name), list):
        if not create:
            raise EditError(N_("no dashboard '%(name)s'"), name=name)
        boards[check_name(name)] = CommentedSeq()
    return boards[name]


def add_dashboard_item(doc: CommentedMap, name: str, item: Mapping[str, Any]) -> None:
    """Add `{chart: entity.chart}` or `{kpi: entity.count | "entity.sum:field"}` (with an
    optional label) at the end of dashboard `name`, creating the dashboard if needed.

    The reference is written as given: one that names no chart or KPI is the
    checker's to report (SD-E170, SD-E171) next to the item.
    """
    kind = "chart" if item.get("chart") else "kpi" if item.get("kpi") else None
    if kind is None:
        raise EditError(N_("a dashboard item needs a chart or a KPI"))
    values: dict[str, Any] = {kind: str(item[kind]).strip()}
    raw_label = item.get("label")
    if isinstance(raw_label, Mapping):
        item_label = label(raw_label.get("en", ""), raw_label.get("zh", ""))
        if item_label:
            values["label"] = item_label
    _dashboard(doc, name, create=True).append(_flow(values))


def remove_dashboard_item(doc: CommentedMap, name: str, index: int) -> None:
    """Remove the item at `index` (0-based) of dashboard `name`."""
    items = _dashboard(doc, name)
    if not 0 <= index < len(items):
        raise EditError(N_("dashboard '%(name)s' has no item %(number)s"), name=name,
                            number=index + 1)
    del items[index]


def move_dashboard_item(doc: CommentedMap, name: str, index: int, offset: int) -> None:
    """Swap the item at `index` with its neighbour `offset` (-1 up, 1 down) places away.

    An item's end-of-line comment moves with it; moving past either end is a no-op.
    """
    items = _dashboard(doc, name)
    if not 0 <= index < len(items):
        raise EditError(N_("dashboard '%(name)s' has no item %(number)s"), name=name,
                            number=index + 1)
    other = index + offset
    if offset not in (-1, 1) or not 0 <= other < len(items):
        return
    items[index], items[other] = items[other], items[index]
    comments = items.ca.items
    mine, theirs = comments.pop(index, None), comments.pop(other, None)
    if mine is not None:
        comments[other] = mine
    if theirs is not None:
        comments[index] = theirs


def replace_part(doc: CommentedMap, entity_name: str, key: str, yaml_text: str) -> None:
    """Replace one part of an entity (charts, views, workflow) by a YAML snippet; empty removes it.

    For the parts the designer shows as YAML rather than as pickers.
    """
    body = entity(doc, entity_name)
    value = _yaml().load(yaml_text) if yaml_text.strip() else None
    if value in (None, [], {}):
        if key in body:
            del body[key]
        return
    body[key] = value


TOP_LEVEL_PARTS = ("dashboards", "reminders", "webhooks")


def replace_top_level(doc: CommentedMap, key: str, yaml_text: str) -> None:
    """Replace a top-level part (dashboards, reminders, webhooks) by a snippet; empty removes it."""
    if key not in TOP_LEVEL_PARTS:
        raise EditError(N_("'%(name)s' is not edited as a part"), name=key)
    value = _yaml().load(yaml_text) if yaml_text.strip() else None
    if value in (None, [], {}):
        if key in doc:
            del doc[key]
        return
    doc[key] = value


# --- roles --------------------------------------------------------------------------


def roles(doc: CommentedMap) -> CommentedMap:
    if not isinstance(doc.get("roles"), CommentedMap):
        doc["roles"] = CommentedMap()
    return doc["roles"]


def role(doc: CommentedMap, name: str) -> CommentedMap:
    found = roles(doc).get(name)
    if not isinstance(found, CommentedMap):
        raise EditError(N_("no role '%(name)s'"), name=name)
    return found


def add_role(doc: CommentedMap, name: str, label_en: str, label_zh: str) -> None:
    """Add a role with no grants yet."""
    name = check_name(name)
    if name in roles(doc):
        raise EditError(N_("role '%(name)s' exists"), name=name)
    body = CommentedMap()
    body["label"] = label(label_en, label_zh)
    body["grants"] = CommentedMap()
    roles(doc)[name] = body


def set_role_label(doc: CommentedMap, name: str, label_en: str, label_zh: str) -> None:
    role(doc, name)["label"] = label(label_en, label_zh)


def remove_role(doc: CommentedMap, name: str) -> None:
    role(doc, name)
    del roles(doc)[name]


def set_grants(doc: CommentedMap, name: str, grid: Mapping[str, Iterable[str]]) -> None:
    """Set a role's grants from the entity × action grid (entities without actions dropped).

    Actions are written in the format's order; the grid's entity order is kept
    for entities already granted, new ones follow.
    """
    body = role(doc, name)
    old = body.get("grants") if isinstance(body.get("grants"), CommentedMap) else CommentedMap()
    wanted = {e: [a for a in ACTIONS if a in set(acts)] for e, acts in grid.items()}
    wanted = {e: acts for e, acts in wanted.items() if acts}
    grants = CommentedMap()
    for key in [k for k in old if k in wanted] + [k for k in wanted if k not in old]:
        grants[key] = _flow_seq(wanted[key])
    body["grants"] = grants


def set_row_rule(doc: CommentedMap, name: str, entity_name: str, path: str, operator: str,
                 value: Any) -> None:
    """Set a role's row rule (data scope): `{path: value}` or `{path: {op: value}}`."""
    body = role(doc, name)
    if operator not in ROW_OPERATORS:
        raise EditError(N_("unknown operator '%(name)s'"), name=operator)
    if not isinstance(body.get("rows"), CommentedMap):
        body["rows"] = CommentedMap()
    rule = value if operator == "eq" else _flow({operator: value})
    body["rows"][entity_name] = _flow({path: rule})


def remove_row_rule(doc: CommentedMap, name: str, entity_name: str) -> None:
    body = role(doc, name)
    rows = body.get("rows")
    if isinstance(rows, CommentedMap) and entity_name in rows:
        del rows[entity_name]
        if not rows:
            del body["rows"]


# --- workflows ------------------------------------------------------------------------

# Transition keys in the order they are written (the checker's own list); the form
# edits all but `when` and `approval`, which stay as they were.
TRANSITION_KEYS = ("name", "from", "to", "roles", "requires", "when", "comment", "label",
                   "approval")
TRANSITION_FORM_KEYS = ("name", "from", "to", "roles", "requires", "comment", "label")


def _workflow(doc: CommentedMap, entity_name: str) -> CommentedMap:
    flow = entity(doc, entity_name).get("workflow")
    if not isinstance(flow, CommentedMap):
        raise EditError(N_("%(entity)s has no workflow yet: pick its field first"),
                        entity=entity_name)
    return flow


def _transitions(doc: CommentedMap, entity_name: str) -> CommentedSeq:
    flow = _workflow(doc, entity_name)
    if not isinstance(flow.get("transitions"), list):
        flow["transitions"] = CommentedSeq()
    return flow["transitions"]


def _named_index(items: list[Any], name: str, index: int | None, missing: str) -> int:
    """The place of the item called `name` (the one at `index` when two share it)."""
    places = [i for i, item in enumerate(items)
              if isinstance(item, Mapping) and item.get("name") == name]
    if index is not None and index in places:
        return index
    if not places:
        raise EditError(missing, name=name)
    return places[0]


def _rebuilt(values: Mapping[str, Any], old: Any) -> CommentedMap:
    """`values` as a mapping written like `old` (flow or block), keeping its comments.

    A comment of a key that is gone moves to the new last key, so a comment line
    standing before the next item stays where it was.
    """
    block = isinstance(old, CommentedMap) and old.fa.flow_style() is False
    out = CommentedMap(values) if block else _flow(values)
    if isinstance(old, CommentedMap):
        for key, comment in old.ca.items.items():
            if key in out:
                out.ca.items[key] = comment
            elif out and list(out)[-1] not in out.ca.items:
                out.ca.items[list(out)[-1]] = comment
    return out


def _states(value: Any) -> Any:
    """`from` as the schemas write it: one state as a word, several as a flow list."""
    states = [str(s) for s in (value if isinstance(value, list | tuple) else [value]) if s]
    if not states:
        return None
    return states[0] if len(states) == 1 else _flow_seq(states)


def _transition_map(transition: Mapping[str, Any], old: Any = None) -> CommentedMap:
    """A transition in the format's key order; `when`, `approval` and unknown keys of `old`
    are kept. Empty lists, an optional comment and an empty label are left out."""
    kept = old if isinstance(old, Mapping) else {}
    values: dict[str, Any] = {}
    for key in TRANSITION_KEYS:
        value = transition.get(key) if key in TRANSITION_FORM_KEYS else kept.get(key)
        if key == "from":
            value = _states(value)
        elif key in ("roles", "requires"):
            value = _flow_seq(value) if value else None
        elif key == "comment":
            value = "required" if value in (True, "required") else None
        elif key == "label" and isinstance(value, Mapping):
            value = label(value.get("en", ""), value.get("zh", "")) or None
        if value not in (None, "", [], {}):
            values[key] = value.strip() if isinstance(value, str) else value
    values |= {k: v for k, v in kept.items() if k not in TRANSITION_KEYS}
    return _rebuilt(values, old)


def _end_comments(node: Any) -> list[Any]:
    """Take the comment lines ruamel keeps at the end of `node` or of its last part: the
    lines that stand before whatever follows it in the file."""
    tokens: list[Any] = []
    while isinstance(node, CommentedMap | CommentedSeq):
        end = getattr(node.ca, "end", None)
        if end:
            tokens = list(end) + tokens
            node.ca.end = []
        if not node:
            break
        node = node[list(node)[-1]] if isinstance(node, CommentedMap) else node[-1]
    return tokens


def _keep_comments_of(node: Any, outer: list[tuple[CommentedMap, str]]) -> None:
    """Before `node` goes (or is emptied, which ruamel writes as `[]` without them), move its
    end comments before the key that follows it: `outer` lists (mapping, key) pairs from
    the innermost up, and the first key with a successor takes them."""
    tokens = _end_comments(node)
    for mapping, key in outer if tokens else []:
        keys = list(mapping)
        if key in keys and keys.index(key) + 1 < len(keys):
            following = keys[keys.index(key) + 1]
            slot = mapping.ca.items.setdefault(following, [None, None, None, None])
            slot[1] = tokens + list(slot[1] or [])
            return


def set_workflow(doc: CommentedMap, entity_name: str, field_name: str, initial: str) -> None:
    """Give the entity a workflow on enum `field_name` starting at `initial`, or change
    both of an existing workflow (its transitions stay).

    Whether the field is an enum and `initial` one of its choices is the checker's
    to say (SD-E180, SD-E181), next to the workflow form.
    """
    field_name, initial = (field_name or "").strip(), (initial or "").strip()
    if not field_name or not initial:
        raise EditError(N_("pick the workflow's field and its first state"))
    body = entity(doc, entity_name)
    flow = body.get("workflow")
    if not isinstance(flow, CommentedMap):
        flow = CommentedMap()
        flow["transitions"] = CommentedSeq()
        body["workflow"] = flow
    for position, (key, value) in enumerate((("field", field_name), ("initial", initial))):
        if key in flow:
            flow[key] = value
        else:
            flow.insert(position, key, value)


def remove_workflow(doc: CommentedMap, entity_name: str) -> None:
    """Remove the entity's workflow: its enum field becomes an ordinary editable field."""
    flow = _workflow(doc, entity_name)
    _keep_comments_of(flow, [(entity(doc, entity_name), "workflow"),
                             (entities(doc), entity_name), (doc, "entities")])
    del entity(doc, entity_name)["workflow"]


def add_transition(doc: CommentedMap, entity_name: str, transition: Mapping[str, Any]) -> None:
    """Add a step at the end of the entity's workflow (a flow mapping, like the schemas).

    A name used twice, a state that is not a choice, a role or required field that
    does not exist are written all the same: the checker names them (SD-E181…E184)
    on the step's row, and the draft cannot be applied until they are fixed.
    """
    check_name(str(transition.get("name") or ""))
    _transitions(doc, entity_name).append(_transition_map(transition))


def replace_transition(doc: CommentedMap, entity_name: str, old_name: str,
                       transition: Mapping[str, Any], index: int | None = None) -> None:
    """Replace step `old_name` (the one at `index` when two share the name) in its place,
    keeping its `when`, its `approval`, its layout and its comments."""
    check_name(str(transition.get("name") or ""))
    steps = _transitions(doc, entity_name)
    place = _named_index(steps, old_name, index, N_("no transition '%(name)s'"))
    steps[place] = _transition_map(transition, steps[place])


def remove_transition(doc: CommentedMap, entity_name: str, name: str,
                      index: int | None = None) -> None:
    """Remove step `name` (the one at `index` when two share the name) from the workflow."""
    steps = _transitions(doc, entity_name)
    place = _named_index(steps, name, index, N_("no transition '%(name)s'"))
    if len(steps) == 1:
        _keep_comments_of(steps, [(_workflow(doc, entity_name), "transitions"),
                                  (entity(doc, entity_name), "workflow"),
                                  (entities(doc), entity_name), (doc, "entities")])
    del steps[place]


def state_fields(fields_map: Mapping[str, Any]) -> dict[str, list[tuple[str, Any]]]:
    """The enum fields a workflow may move, with their (choice, label) pairs: a sensitive or
    encrypted field is left out (a workflow shows its state to everyone who reads)."""
    out: dict[str, list[tuple[str, Any]]] = {}
    for name, options in fields_map.items():
        if not isinstance(options, Mapping) or options.get("type") != "enum":
            continue
        if options.get("sensitive") is True or options.get("encrypted") is True:
            continue
        out[str(name)] = choice_pairs(options)
    return out


def choice_pairs(options: Any) -> list[tuple[str, Any]]:
    """An enum field's (choice, label) pairs from its options in the YAML document."""
    choices = options.get("choices") if isinstance(options, Mapping) else None
    return [(str(k), v) for k, v in choices.items()] if isinstance(choices, Mapping) else []


# --- reminders ------------------------------------------------------------------------

# Reminder keys in the order they are written (app/schema/automation.py); the form
# edits all but `when`, which stays as it was.
REMINDER_KEYS = ("name", "entity", "date", "before", "after", "yearly", "when", "notify",
                 "label")
REMINDER_FORM_KEYS = ("name", "entity", "date", "before", "after", "yearly", "notify", "label")


def _reminders(doc: CommentedMap) -> CommentedSeq:
    if not isinstance(doc.get("reminders"), list):
        doc["reminders"] = CommentedSeq()
    return doc["reminders"]


def _reminder_value(key: str, value: Any) -> Any:
    if key == "after" and isinstance(value, Mapping):
        if any(not str(duration or "").strip() for duration in value.values()):
            raise EditError(N_("a reminder after a date needs a duration like 24h or 2d"))
        return _flow({str(k): str(v).strip() for k, v in value.items()})
    if key == "notify" and isinstance(value, Mapping):
        return _flow(value)
    if key == "yearly":
        return True if value is True else None
    if key == "label" and isinstance(value, Mapping):
        return label(value.get("en", ""), value.get("zh", "")) or None
    return value.strip() if isinstance(value, str) else value


def _reminder_map(reminder: Mapping[str, Any], old: Any = None) -> CommentedMap:
    """A reminder in the format's key order; `when` and unknown keys of `old` are kept."""
    check_name(str(reminder.get("name") or ""))
    kept = old if isinstance(old, Mapping) else {}
    values: dict[str, Any] = {}
    for key in REMINDER_KEYS:
        value = reminder.get(key) if key in REMINDER_FORM_KEYS else kept.get(key)
        value = _reminder_value(key, value) if key in REMINDER_FORM_KEYS else value
        if value not in (None, "", [], {}):
            values[key] = value
    values |= {k: v for k, v in kept.items() if k not in REMINDER_KEYS}
    return _rebuilt(values, old)


def add_reminder(doc: CommentedMap, reminder: Mapping[str, Any]) -> None:
    """Add a reminder at the end of `reminders:` (a flow mapping, like the schemas).

    `reminder` holds name, entity, `date` (+ `before`, `yearly`) or `after: {field:
    duration}`, `notify` (a path to a person, or `{role: r}`) and a bilingual label.
    A field that is not a date, a duration, a person or a role that is wrong is
    written all the same: the checker names it (SD-E211…E219) on the reminder's row.
    """
    _reminders(doc).append(_reminder_map(reminder))


def replace_reminder(doc: CommentedMap, old_name: str, reminder: Mapping[str, Any],
                     index: int | None = None) -> None:
    """Replace reminder `old_name` (the one at `index` when two share the name) in its
    place, keeping its `when` condition, layout and comments."""
    items = _reminders(doc)
    place = _named_index(items, old_name, index, N_("no reminder '%(name)s'"))
    items[place] = _reminder_map(reminder, items[place])


def remove_reminder(doc: CommentedMap, name: str, index: int | None = None) -> None:
    """Remove reminder `name` (the one at `index` when two share the name); an empty list
    goes with its last reminder."""
    items = _reminders(doc)
    try:
        place = _named_index(items, name, index, N_("no reminder '%(name)s'"))
        if len(items) == 1:
            _keep_comments_of(items, [(doc, "reminders")])
        del items[place]
    finally:
        if not items:
            del doc["reminders"]


def notify_paths(spec: Any, entity_spec: Any) -> list[str]:
    """Fields of an entity a reminder may notify: a user field, or a single relation to a
    record with one (an employee), then `created_by`."""
    from app.schema.automation import user_path_ok

    by_name = {e.name: e for e in spec.entities}
    return [f.name for f in entity_spec.fields if f.type in ("user", "relation")
            and user_path_ok(entity_spec, f.name, by_name)] + ["created_by"]


# --- problems next to controls --------------------------------------------------------


# Controls that stand for one item of a list or one view: its row and form.
ITEM_CONTROLS = (
    re.compile(r"^entities\.[^.\[]+\.charts\[\d+\]"),
    re.compile(r"^entities\.[^.\[]+\.views\.(kanban|calendar)(?=$|[.\[])"),
    re.compile(r"^dashboards\.[^.\[]+\[\d+\]"),
    re.compile(r"^entities\.[^.\[]+\.workflow\.transitions\[\d+\]"),
    re.compile(r"^reminders\[\d+\]"),
)


def control_for(path: str) -> str:
    """The designer control a problem's YAML path concerns, as a stable key.

    `entities.customer.fields.wechat.max_length` -> `entities.customer.fields.wechat`
    (the field's row and form), `roles.operator.rows.customer` -> `roles.operator`,
    `entities.customer.list[0]` -> `entities.customer.list`. A chart, a view and a
    dashboard item keep their own key, `entities.customer.charts[2]`,
    `entities.customer.views.kanban`, `dashboards.home[3]`, and so do a workflow's step,
    `entities.service_request.workflow.transitions[1]`, and a reminder, `reminders[0]`:
    the row or form showing it. Pages look their controls up by these keys.
    """
    for pattern in ITEM_CONTROLS:
        found = pattern.match(path or "")
        if found:
            return found.group(0)
    parts = re.split(r"\.|\[", path or "")
    if len(parts) >= 4 and parts[0] == "entities" and parts[2] == "fields":
        return ".".join(parts[:4])
    if len(parts) >= 3 and parts[0] == "entities":
        return ".".join(parts[:3])
    if len(parts) >= 2 and parts[0] in ("roles", "dashboards", "entities"):
        return ".".join(parts[:2])
    return parts[0] if parts and parts[0] else ""


# --- what the pickers offer ---------------------------------------------------------------


def scope_paths(spec: Any, entity_name: str, depth: int = 3) -> list[str]:
    """Field paths a row rule on `entity_name` may name: its fields, then along relations.

    `owner`, `owner.department`, `customer.owner.department`: only single
    relations are followed (a rule compares one value), up to `depth` hops.
    """
    paths: list[str] = []

    def walk(name: str, prefix: str, hops: int, seen: tuple[str, ...]) -> None:
        for field in spec.entity(name).fields:
            if field.is_many or field.computed:
                continue
            paths.append(prefix + field.name)
            if field.type == "relation" and hops > 1 and field.to not in seen:
                walk(field.to, f"{prefix}{field.name}.", hops - 1, (*seen, field.to))

    walk(entity_name, "", depth, (entity_name,))
    return paths


def scope_values(spec: Any) -> list[str]:
    """Values a row rule may compare with: `$user`, `$me` and `$me.<field>` of the staff entity."""
    values = ["$user"]
    for candidate in spec.entities:
        if any(f.type == "user" for f in candidate.fields):
            values.append("$me")
            values += [f"$me.{f.name}" for f in candidate.fields
                       if f.type == "relation" and not f.many]
            break
    return values


def group_fields(entity_spec: Any) -> list[str]:
    """Fields a chart may group by: what the checker accepts (not many-to-many, not
    encrypted) of the kinds docs/schema.md names — enum, boolean, relation, user, date,
    datetime (a slice per free text value says nothing) — then `created_at`/`updated_at`.

    Sensitive fields are left out as well: a reader without view_sensitive may not
    group by them (the record service), and a data subject's sealed ones cannot be
    grouped at all (SD-W025), so such a chart would be empty for most.
    """
    names = [f.name for f in entity_spec.fields if f.type in GROUPABLE and f.type in GROUP_TYPES
             and not f.is_many and not f.encrypted and not f.sensitive]
    return names + ["created_at", "updated_at"]


def date_fields(entity_spec: Any) -> list[str]:
    """The entity's date and datetime fields, then `created_at` and `updated_at`."""
    return [f.name for f in entity_spec.fields if f.type in DATE_TYPES] + [
        "created_at", "updated_at"]


def measure_fields(entity_spec: Any) -> list[str]:
    """Numeric fields a chart or a KPI may sum, average, or take the min/max of."""
    return [f.name for f in entity_spec.fields if f.type in NUMERIC_TYPES]


def chart_refs(spec: Any) -> list[tuple[Any, list[str]]]:
    """Per entity with charts, the `entity.chart` references a dashboard may show."""
    return [(e, [f"{e.name}.{c.name}" for c in e.charts]) for e in spec.entities if e.charts]


def kpi_refs(spec: Any) -> list[tuple[Any, list[str]]]:
    """Per entity, the KPIs a dashboard may show: `entity.count`, then `entity.sum:field`
    (and avg, min, max) of each numeric field."""
    return [(e, [f"{e.name}.count"] + [f"{e.name}.{func}:{name}" for name in measure_fields(e)
                                       for func in MEASURES if func != "count"])
            for e in spec.entities]
