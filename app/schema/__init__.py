"""YAML schema -> validated, frozen spec."""

from app.schema.loader import check_file, check_text, load_spec
from app.schema.problems import Problem, SchemaError
from app.schema.spec import AppSpec, EntitySpec, FieldSpec, Label, RoleSpec

__all__ = [
    "AppSpec",
    "EntitySpec",
    "FieldSpec",
    "Label",
    "Problem",
    "RoleSpec",
    "SchemaError",
    "check_file",
    "check_text",
    "load_spec",
]
