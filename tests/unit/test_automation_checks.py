# ruff: noqa: E501
"""`reminders:` and `webhooks:`: every code (SD-E210…E227, SD-W016/W017), and the specs read."""

from __future__ import annotations

from app.schema import check_text
from app.schema.automation import ReminderSpec, WebhookSpec, parse_duration

TAIL = "    - {kpi: customer.count, label: {en: Customers, zh: 客户数}}\n"
GOOD_REMINDER = "  - {name: r, entity: customer, date: created_at, before: 1d, notify: owner}\n"
GOOD_HOOK = "  - {entity: customer, on: [create, update], url: 'https://erp.example/hook', secret_env: ERP_SECRET}\n"


def rem(line: str) -> tuple[str, str]:
    return TAIL, TAIL + "reminders:\n" + line


def hook(line: str) -> tuple[str, str]:
    return TAIL, TAIL + "webhooks:\n" + line


# (code, old, new, path), joined to the shared table in test_schema_checks.py
AUTOMATION_CASES: list[tuple[str, str, str, str]] = [
    ("SD-E210", TAIL, TAIL + "reminders: {name: r}\n", "reminders"),
    ("SD-E211", *rem(GOOD_REMINDER.replace("name: r,", "name: R-1,")), "reminders[0].name"),
    ("SD-E212", *rem(GOOD_REMINDER.replace("entity: customer", "entity: custmer")), "reminders[0].entity"),
    ("SD-E213", *rem(GOOD_REMINDER.replace("date: created_at", "date: name")), "reminders[0].date"),
    ("SD-E214", *rem(GOOD_REMINDER.replace("before: 1d", "before: 1d, after: 2h")), "reminders[0].after"),
    ("SD-E215", *rem(GOOD_REMINDER.replace("before: 1d", "before: one day")), "reminders[0].before"),
    ("SD-E216", *rem(GOOD_REMINDER.replace("notify: owner", "notify: kind")), "reminders[0].notify"),
    ("SD-E217", *rem(GOOD_REMINDER.replace("notify: owner", "notify: {role: boss}")), "reminders[0].notify"),
    ("SD-E218", *rem(GOOD_REMINDER.replace("notify: owner", "notify: owner, when: {owner: $me}")), "reminders[0].when"),
    ("SD-E219", *rem(GOOD_REMINDER.replace("before: 1d", "yearly: true")), "reminders[0].yearly"),
    ("SD-W016", *rem(GOOD_REMINDER.replace("date: created_at", "date: since")), "reminders[0].date"),
    ("SD-W017", *rem("  - {name: n, entity: note, date: created_at, notify: {role: operator}}\n"), "reminders[0].notify"),
    ("SD-E220", *hook(GOOD_HOOK.replace("entity: customer", "entity: client")), "webhooks[0].entity"),
    ("SD-E221", *hook(GOOD_HOOK.replace("[create, update]", "[create, save]")), "webhooks[0].on"),
    ("SD-E222", *hook(GOOD_HOOK.replace("[create, update]", "[transition]")), "webhooks[0].on"),
    ("SD-E223", *hook(GOOD_HOOK.replace("https://erp.example/hook", "https://u:pw@erp.example/hook")), "webhooks[0].url"),
    ("SD-E224", *hook(GOOD_HOOK.replace("ERP_SECRET", "'s3cr3t value'")), "webhooks[0].secret_env"),
    ("SD-E225", *hook(GOOD_HOOK + GOOD_HOOK.replace("  - {", "  - {name: customer_0, ")), "webhooks[1].name"),
    ("SD-E226", *hook(GOOD_HOOK.replace("secret_env", "sensitive: 'yes', secret_env")), "webhooks[0].sensitive"),
    ("SD-E227", *hook(GOOD_HOOK.replace("secret_env", "retries: 50, secret_env")), "webhooks[0].retries"),
]


def base() -> str:
    from tests.unit.test_schema_checks import BASE

    return BASE


def test_reminders_and_webhooks_are_read_into_the_spec() -> None:
    text = base().replace(TAIL, TAIL + "reminders:\n" + GOOD_REMINDER
                          + "  - {name: care, entity: customer, date: since, yearly: true, notify: owner.account, label: {en: 'Anniversary of %(record)s', zh: '%(record)s 周年'}}\n"
                          + "  - {name: sla, entity: customer, after: {created_at: 24h}, when: {kind: company}, notify: {role: operator}}\n"
                          + "webhooks:\n" + GOOD_HOOK.replace("secret_env", "sensitive: true, retries: 3, secret_env"), 1)
    spec, problems = check_text(text, "t.yaml")
    assert spec is not None, [p.format() for p in problems]
    assert problems == []  # a yearly rule reads month and day once a day: no index to ask for
    first, care, sla = spec.reminders
    assert first == ReminderSpec("r", "customer", "created_at", -86400, False, None, ("owner",), None, None)
    assert care.yearly and care.notify_path == ("owner", "account") and care.label.zh == "%(record)s 周年"
    assert sla.offset == 86400 and sla.notify_role == "operator" and sla.when is not None
    assert spec.webhooks == (WebhookSpec("customer_0", "customer", ("create", "update"),
                                         "https://erp.example/hook", "ERP_SECRET", True, 3),)


def test_durations() -> None:
    assert parse_duration("30m") == 1800
    assert parse_duration("24h") == parse_duration("1d") == 86400
    assert parse_duration("2w") == 14 * 86400
    assert parse_duration("1.5d") is None and parse_duration("d") is None


def test_shipped_crm_declares_reminders_and_a_webhook() -> None:
    from pathlib import Path

    from app.schema import check_file

    spec, problems = check_file(Path(__file__).resolve().parents[2] / "schema" / "crm.yaml")
    assert spec is not None, [p.format() for p in problems]
    names = {r.name for r in spec.reminders}
    assert {"follow_up_due", "service_request_sla", "customer_birthday"} <= names
    assert spec.webhooks and all(h.secret_env for h in spec.webhooks)
