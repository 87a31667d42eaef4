"""Check the `approval:` of a workflow transition (审批) and build its spec.

Three shapes are accepted, so the short case stays short:

- `approval: [{by: owner.manager}, {role: manager}]` — sequential levels;
- `approval: {levels: [...], when: {amount: {gt: 50000}}, pending: pending}` —
  levels, the condition under which approval is needed, and the state the
  record shows while the request is open;
- `approval: same` — the approval of the nearest transition above it that has one.

Codes SD-E186..SD-E192 and SD-W013..SD-W014 are reported here; `checks.py`
lists them in `CODES` with the others.
"""

from __future__ import annotations

from typing import Any

from app.i18n import N_
from app.schema.spec import ApprovalLevel, ApprovalSpec, EntitySpec, WorkflowSpec

APPROVAL_KEYS = ("levels", "when", "pending")
LEVEL_KEYS = ("by", "role")


class ApprovalChecker:
    """Parse one workflow's approvals, reporting through the schema `Checker`."""

    def __init__(self, checker: Any, entity: EntitySpec, by_name: dict[str, EntitySpec],
                 role_names: list[str], conditions: Any, states: list[str] | None):
        self.checker = checker
        self.states = states or []
        self.entity = entity
        self.by_name = by_name
        self.role_names = role_names
        self.conditions = conditions
        self.previous: ApprovalSpec | None = None
        self.previous_failed = False  # a broken approval above: `same` says nothing more

    def parse(self, item: Any, path: str) -> tuple[bool, ApprovalSpec | None]:
        """Return (ok, spec) for `item['approval']` (spec None where there is none)."""
        if "approval" not in item:
            return True, None
        node = item["approval"]
        apath = f"{path}.approval"
        if node == "same":
            if self.previous is None and self.previous_failed:
                return False, None
            if self.previous is None:
                self.checker.report(
                    "SD-E190", apath,
                    N_("'approval: same' needs a transition with an approval above it"),
                    item, "approval")
                return False, None
            return True, self.previous
        if isinstance(node, list):
            node_map: Any = {"levels": node}
            levels_parent, levels_key = item, "approval"
        elif isinstance(node, dict):
            self.checker.unknown_keys(node, APPROVAL_KEYS, apath)
            node_map, levels_parent, levels_key = node, node, "levels"
        else:
            self.checker.report(
                "SD-E186", apath,
                N_("approval must be a list of levels, a mapping with 'levels', or 'same'"),
                item, "approval")
            self.previous_failed = True
            return False, None
        spec = self._spec(node_map, apath, levels_parent, levels_key, self.states, item)
        if spec is None:
            self.previous_failed = True
            return False, None
        self.previous = spec
        return True, spec

    def _spec(self, node: Any, path: str, parent: Any, key: Any, states: list[str],
              item: Any) -> ApprovalSpec | None:
        levels_node = node.get("levels")
        lpath = path if key == "approval" else f"{path}.levels"
        if levels_node is None or (isinstance(levels_node, list) and not levels_node):
            self.checker.report("SD-E187", lpath, N_("an approval needs at least one level"),
                                parent, key)
            return None
        if not self.checker.expect_list(levels_node, lpath, parent, key):
            return None
        levels = [self.level(level, f"{lpath}[{i}]", levels_node, i)
                  for i, level in enumerate(levels_node)]
        ok = all(level is not None for level in levels)
        when = None
        if "when" in node:
            when = self.conditions.parse(node["when"], self.entity, f"{path}.when", node, "when")
            ok = ok and when is not None
        pending = node.get("pending")
        if pending is not None:
            ok = self._pending(str(pending), path, node, states, item) and ok
        if not ok:
            return None
        return ApprovalSpec(levels=tuple(levels), when=when,  # type: ignore[arg-type]
                            pending=None if pending is None else str(pending))

    def _pending(self, pending: str, path: str, node: Any, states: list[str], item: Any
                 ) -> bool:
        sources = item.get("from")
        sources = [str(s) for s in sources] if isinstance(sources, list) else [str(sources)]
        if states and pending not in states:
            self.checker.report(
                "SD-E191", f"{path}.pending",
                N_("'%(state)s' is not a choice of the workflow field (choices: %(choices)s)"),
                node, "pending", state=pending, choices=", ".join(states),
                **self.checker.did_you_mean(pending, states))
            return False
        if pending in sources or pending == str(item.get("to")):
            self.checker.report(
                "SD-E191", f"{path}.pending",
                N_("the pending state '%(state)s' must differ from the transition's 'from' "
                   "and 'to'"), node, "pending", state=pending)
            return False
        return True

    def level(self, node: Any, path: str, parent: Any, index: int) -> ApprovalLevel | None:
        """Check one level: exactly one of `by` (a path to an account) or `role`."""
        if not self.checker.expect_map(node, path, parent, index):
            return None
        self.checker.unknown_keys(node, LEVEL_KEYS, path)
        given = [k for k in LEVEL_KEYS if k in node]
        if len(given) != 1:
            self.checker.report(
                "SD-E188", path, N_("an approval level names exactly one of 'by' or 'role'"),
                parent, index)
            return None
        if "role" in node:
            role = str(node["role"])
            if role not in self.role_names:
                self.checker.report(
                    "SD-E189", f"{path}.role", N_("'%(name)s' is not a role"), node, "role",
                    name=role, **self.checker.did_you_mean(role, self.role_names))
                return None
            return ApprovalLevel(role=role)
        by = str(node["by"])
        if not self._leads_to_account(by, f"{path}.by", node):
            return None
        return ApprovalLevel(by=by)

    def _leads_to_account(self, dotted: str, path: str, node: Any) -> bool:
        """Whether `dotted` is relations ending at a user field or an entity with one."""
        target = self.conditions.walk(self.entity, dotted, path, node, "by")
        if target is None:
            return False
        leads = target.type == "user" or (
            target.is_foreign_key and target.to in self.by_name
            and self.by_name[target.to].user_field is not None)
        if not leads:
            self.checker.report(
                "SD-E192", path,
                N_("'%(name)s' must lead to a login account: a user field, or a relation to an "
                   "entity with a user field"), node, "by", name=dotted)
        return leads


def warn_approvals(checker: Any, entity: EntitySpec, spec: WorkflowSpec, roles: list[Any],
                   node: Any, path: str) -> None:
    """Warnings: approvers who could never read the record; a pending state left by steps."""
    grants = {r.name: r for r in roles}
    for i, t in enumerate(spec.transitions):
        if t.approval is None:
            continue
        for level in t.approval.levels:
            role = grants.get(level.role or "")
            if role is not None and "read" not in role.actions_on(entity.name):
                checker.report(
                    "SD-W013", f"{path}.transitions[{i}].approval",
                    N_("role '%(role)s' approves %(entity)s but may not read it, so it can "
                       "never decide"), node, "transitions", role=level.role,
                    entity=entity.name)
    for state in sorted(spec.pending_states):
        for t in spec.transitions:
            if state in t.sources or t.to == state:
                checker.report(
                    "SD-W014", f"{path}.transitions",
                    N_("transition '%(name)s' moves from or to '%(state)s', the state a "
                       "record holds while its approval is open"), node, "transitions",
                    name=t.name, state=state)

