"""Read a schema file with ruamel.yaml, keeping line and column of every node."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError

from app.i18n import N_
from app.schema.checks import Checker
from app.schema.problems import Problem, SchemaError
from app.schema.spec import AppSpec


def _mark_problem(code: str, message: str, exc: MarkedYAMLError, filename: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    column = mark.column + 1 if mark is not None else 1
    detail = " ".join(str(part) for part in (exc.context, exc.problem) if part)
    return Problem(
        code=code,
        path="",
        message=message,
        params={"detail": detail.strip()},
        file=filename,
        line=line,
        column=column,
    )


def parse_text(text: str, filename: str) -> tuple[Any, list[Problem]]:
    """Parse YAML text; return the document (or None) and any syntax problems."""
    yaml = YAML(typ="rt")
    try:
        return yaml.load(text), []
    except DuplicateKeyError as exc:
        return None, [_mark_problem("SD-E002", N_("duplicate key: %(detail)s"), exc, filename)]
    except MarkedYAMLError as exc:
        return None, [_mark_problem("SD-E001", N_("YAML syntax error: %(detail)s"), exc, filename)]


def check_text(text: str, filename: str = "<schema>") -> tuple[AppSpec | None, list[Problem]]:
    """Check schema text; return the spec (None on any error) and all problems."""
    document, problems = parse_text(text, filename)
    if problems:
        return None, problems
    checker = Checker(document, filename)
    spec = checker.run()
    if spec is not None:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        spec = replace(spec, digest=digest)
    return spec, checker.problems


def check_file(path: str | Path) -> tuple[AppSpec | None, list[Problem]]:
    """Check a schema file; a missing or unreadable file is a problem, not a crash."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [
            Problem(
                code="SD-E001",
                path="",
                message=N_("cannot read the schema file: %(detail)s"),
                params={"detail": str(exc)},
                file=str(path),
                line=1,
                column=1,
            )
        ]
    return check_text(text, str(path))


def load_spec(path: str | Path) -> AppSpec:
    """Return the spec of a schema file or raise SchemaError with every problem."""
    spec, problems = check_file(path)
    if spec is None:
        raise SchemaError(problems)
    return spec
