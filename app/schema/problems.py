"""Problems found in a schema: a stable code, a YAML path, a position and a hint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.i18n import gettext


@dataclass(frozen=True)
class Problem:
    """One problem in a schema file.

    `message` and `hint` are msgids (marked with `N_`) filled with `params`
    when shown, so the reader gets them in their own language.
    """

    code: str
    path: str
    message: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    file: str = ""
    line: int = 0
    column: int = 0
    hint: str | None = None
    hint_params: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def is_error(self) -> bool:
        return self.code.startswith("SD-E")

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def text(self) -> str:
        """Return the message (and hint) in the current language."""
        text = gettext(self.message, **self.params)
        if self.hint:
            text = f"{text} ({gettext(self.hint, **self.hint_params)})"
        return text

    def format(self) -> str:
        """`SD-E108 entities.customer.list[0]: ... — schema/crm.yaml:14:12`."""
        path = f" {self.path}:" if self.path else ""
        return f"{self.code}{path} {self.text()} — {self.location}"


class SchemaError(Exception):
    """Raised when a schema has errors; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errors = [p for p in problems if p.is_error]
        super().__init__("\n".join(p.format() for p in errors))
