# ruff: noqa: E501
"""`views:` (kanban, calendar), `app.timezone` and `currency`: checked, read into the spec."""

from __future__ import annotations

from app.schema import check_text

IMPORT_KEY = "    import_key: phone\n"
VIEWS = """\
    views:
      kanban: {group_by: kind, card: [name, owner]}
      calendar: {date: created_at, title: name}
"""
FIELDS_TAIL = (
    "      helpers: {type: relation, to: employee, many: true, label: {en: Helpers, zh: 协助}}\n"
)
MANY_CHOICES = "      grade: {type: enum, label: {en: Grade, zh: 等级}, choices: [a, b, c, d, e, f, g, h, i, j, k, l, m]}\n"
BASE_BLOCK = (
    FIELDS_TAIL
    + """\
    list: [name, kind, phone, owner]
    search: [name, phone]
    filters: [kind, owner, created_at]
    order: [-created_at]
    children: [note]
    import_key: phone
"""
)
V = "entities.customer.views"


def with_views(views: str) -> tuple[str, str]:
    return IMPORT_KEY, IMPORT_KEY + views


# (code, old, new, path), joined to the shared table in test_schema_checks.py
VIEW_CASES: list[tuple[str, str, str, str]] = [
    (
        "SD-E200",
        "  default_locale: zh\n",
        "  default_locale: zh\n  timezone: Asia/Shangai\n",
        "app.timezone",
    ),
    (
        "SD-E201",
        "min: 0, label: {en: Credit",
        "min: 0, currency: RMB, label: {en: Credit",
        "entities.customer.fields.credit.currency",
    ),
    (
        "SD-E202",
        *with_views(VIEWS.replace("group_by: kind", "group_by: name")),
        f"{V}.kanban.group_by",
    ),
    (
        "SD-E203",
        *with_views(VIEWS.replace("card: [name, owner]", "card: [name, ownr]")),
        f"{V}.kanban.card[1]",
    ),
    ("SD-E204", *with_views(VIEWS.replace("date: created_at", "date: name")), f"{V}.calendar.date"),
    ("SD-E205", *with_views(VIEWS.replace("title: name", "title: nam")), f"{V}.calendar.title"),
    (
        "SD-E206",
        *with_views(VIEWS.replace("title: name", "title: name, end: since")),
        f"{V}.calendar.end",
    ),
    (
        "SD-W010",
        *with_views(VIEWS.replace("card: [name, owner]", "card: [name, phone]")),
        f"{V}.kanban.card[1]",
    ),
    (
        "SD-W011",
        BASE_BLOCK,
        FIELDS_TAIL
        + MANY_CHOICES
        + BASE_BLOCK[len(FIELDS_TAIL) :]
        + VIEWS.replace("group_by: kind", "group_by: grade"),
        f"{V}.kanban.group_by",
    ),
    (
        "SD-W012",
        *with_views(VIEWS.replace("date: created_at", "date: since")),
        f"{V}.calendar.date",
    ),
]


def base() -> str:
    from tests.unit.test_schema_checks import BASE

    return BASE


def test_views_timezone_and_currency_are_read_into_the_spec() -> None:
    BASE = base()
    text = BASE.replace(
        IMPORT_KEY,
        IMPORT_KEY + VIEWS.replace("date: created_at", "date: created_at, end: updated_at"),
        1,
    )
    text = text.replace(
        "  default_locale: zh\n", "  default_locale: zh\n  timezone: Europe/Berlin\n", 1
    )
    text = text.replace(
        "min: 0, label: {en: Credit", "min: 0, currency: cny, label: {en: Credit", 1
    )
    spec, problems = check_text(text, "t.yaml")
    assert spec is not None, [p.format() for p in problems]
    assert problems == []
    customer = spec.entity("customer")
    assert customer.views.kanban.group_by == "kind" and customer.views.kanban.card == (
        "name",
        "owner",
    )
    assert (
        customer.views.calendar.date,
        customer.views.calendar.title,
        customer.views.calendar.end,
    ) == ("created_at", "name", "updated_at")
    assert spec.timezone == "Europe/Berlin"
    assert customer.field("credit").currency == "CNY"
    assert spec.entity("note").views.kanban is None


def test_defaults_without_views_or_timezone() -> None:
    BASE = base()
    spec, _ = check_text(BASE, "t.yaml")
    assert spec.timezone == "Asia/Shanghai"
    assert spec.entity("customer").views.calendar is None
    assert spec.entity("customer").field("credit").currency is None


def test_currency_on_a_text_field_does_not_apply() -> None:
    BASE = base()
    text = BASE.replace("body: {type: text,", "body: {type: text, currency: CNY,", 1)
    _spec, problems = check_text(text, "t.yaml")
    assert ("SD-E114", "entities.note.fields.body.currency") in [(p.code, p.path) for p in problems]


def test_bad_zone_suggests_the_right_one() -> None:
    BASE = base()
    _spec, problems = check_text(
        BASE.replace("  default_locale: zh\n", "  default_locale: zh\n  timezone: Asia/Shangai\n"),
        "schema/crm.yaml",
    )
    problem = next(p for p in problems if p.code == "SD-E200")
    assert "did you mean 'Asia/Shanghai'?" in problem.format()
    assert problem.format().endswith("— schema/crm.yaml:5:3")


def test_shipped_schemas_declare_their_boards() -> None:
    from pathlib import Path

    from app.schema import check_file

    root = Path(__file__).resolve().parents[2]
    crm, _ = check_file(root / "schema" / "crm.yaml")
    assert crm.entity("service_request").views.kanban.group_by == "status"
    assert crm.entity("follow_up").views.calendar.date == "next_follow_up"
    library, _ = check_file(root / "schema" / "examples" / "library.yaml")
    assert library.entity("loan").views.kanban and library.entity("loan").views.calendar
