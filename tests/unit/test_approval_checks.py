# ruff: noqa: E501
"""Approvals in the workflow format (SD-E186..E192, SD-W013..W014): checked, read into the spec.

`APPROVAL_CASES` joins the table of `tests/unit/test_schema_checks.py` (one case
per code, applied to its BASE schema): each puts a workflow with an approval on
BASE's `note` and a `reviewer` role that may read notes.
"""

from __future__ import annotations

from app.schema import check_text

SUBJECT = "      subject: {type: string, label: {en: Subject, zh: 主题}}\n"
GOOD = "{levels: [{by: customer.owner}, {role: reviewer}], pending: pending, when: {subject: {ne: draft}}}"
P = "entities.note.workflow.transitions[0].approval"


def note_workflow(approval: str = GOOD, extra_step: str = "", extra_role: str = "") -> tuple[str, str]:
    """(old, new): BASE's note gets a `stage` workflow whose `finish` step has `approval`."""
    new = SUBJECT + (
        "      stage: {type: enum, default: draft, label: {en: Stage, zh: 阶段}, choices: [draft, pending, done]}\n"
        "    workflow:\n"
        "      field: stage\n"
        "      initial: draft\n"
        "      transitions:\n"
        f"        - {{name: finish, from: draft, to: done, label: {{en: Finish, zh: 完成}}, approval: {approval}}}\n"
        "        - {name: redo, from: done, to: draft, label: {en: Redo, zh: 重做}, approval: same}\n"
        f"{extra_step}"
        "roles:\n"
        "  reviewer:\n"
        "    label: {en: Reviewer, zh: 审核员}\n"
        "    grants:\n"
        "      note: [read, update]\n"
        f"{extra_role}"
    )
    return SUBJECT + "roles:\n", new


CLERK = "  clerk:\n    label: {en: Clerk, zh: 职员}\n    grants:\n      customer: [read]\n"

APPROVAL_CASES: list[tuple[str, str, str, str]] = [
    ("SD-E186", *note_workflow("5"), P),
    ("SD-E187", *note_workflow("[]"), P),
    ("SD-E188", *note_workflow("[{by: customer.owner, role: reviewer}]"), f"{P}[0]"),
    ("SD-E189", *note_workflow("[{role: reviewr}]"), f"{P}[0].role"),
    ("SD-E190", *note_workflow("same"), P),
    ("SD-E191", *note_workflow("{levels: [{role: reviewer}], pending: pendng}"), f"{P}.pending"),
    ("SD-E192", *note_workflow("[{by: body}]"), f"{P}[0].by"),
    ("SD-W013", *note_workflow("[{role: clerk}]", extra_role=CLERK), P),
    ("SD-W014", *note_workflow(extra_step="        - {name: hold, from: pending, to: draft, label: {en: Hold, zh: 搁置}}\n"),
     "entities.note.workflow.transitions"),
]


def spec_with(approval: str = GOOD, **kwargs: str):  # noqa: ANN201
    from tests.unit.test_schema_checks import BASE

    old, new = note_workflow(approval, **kwargs)
    spec, problems = check_text(BASE.replace(old, new, 1), "t.yaml")
    return spec, problems


def test_approval_is_read_into_the_spec() -> None:
    spec, problems = spec_with()
    assert spec is not None, [p.format() for p in problems]
    assert [p.code for p in problems] == []  # `pending` is reached through the approval (no SD-W003)
    wf = spec.entity("note").workflow
    finish, redo = wf.transition("finish"), wf.transition("redo")
    assert [(lv.by, lv.role) for lv in finish.approval.levels] == [("customer.owner", None), (None, "reviewer")]
    assert finish.approval.pending == "pending"
    assert finish.approval.when is not None and finish.approval.when.path == ("subject",)
    assert redo.approval == finish.approval  # `approval: same`
    assert wf.pending_states == frozenset({"pending"})


def test_short_form_is_a_list_of_levels() -> None:
    spec, problems = spec_with("[{role: reviewer}]")
    assert spec is not None, [p.format() for p in problems]
    approval = spec.entity("note").workflow.transition("finish").approval
    assert approval.pending is None and approval.when is None
    assert [lv.role for lv in approval.levels] == ["reviewer"]


def test_pending_state_must_differ_from_from_and_to() -> None:
    spec, problems = spec_with("{levels: [{role: reviewer}], pending: done}")
    assert spec is None
    assert [(p.code, p.path) for p in problems if p.is_error] == [("SD-E191", f"{P}.pending")]


def test_approval_condition_uses_the_shared_syntax() -> None:
    spec, problems = spec_with("{levels: [{role: reviewer}], when: {subjct: {ne: x}}}")
    assert spec is None
    problem = next(p for p in problems if p.is_error)
    assert problem.code == "SD-E152" and problem.path == f"{P}.when.subjct"
    assert "did you mean 'subject'?" in problem.format()


def test_shipped_crm_sales_order_needs_approval_over_50000() -> None:
    from pathlib import Path

    from app.schema import check_file

    spec, _problems = check_file(Path(__file__).resolve().parents[2] / "schema" / "crm.yaml")
    approval = spec.entity("sales_order").workflow.transition("submit").approval
    assert [(lv.by, lv.role) for lv in approval.levels] == [("owner.manager", None), (None, "manager")]
    assert approval.when.op == "gt" and approval.when.value == 50000
    assert approval.pending == "pending"
