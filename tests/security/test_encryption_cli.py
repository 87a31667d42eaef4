"""Encrypted fields at rest, key rotation, and the roles CLI."""

from __future__ import annotations

import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask

from app.security.cli import keys, roles
from app.state import state
from tests.security.conftest import add_row

SECRET = "110101199003077777"


def raw_values(app: Flask, pk: int) -> str:
    with app.app_context():
        with state().db.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT * FROM customer WHERE id = :i"), {"i": pk}).one()
        return " ".join(str(v) for v in row)


def test_raw_column_holds_no_plaintext_and_rotation(crm_app: Flask) -> None:
    pk = add_row(crm_app, "customer", name="Enc", kind="company", points=0, id_no=SECRET)
    before = raw_values(crm_app, pk)
    assert SECRET not in before
    old_keys = list(crm_app.config["FIELD_ENCRYPTION_KEYS"])
    new_key = Fernet.generate_key().decode()
    crm_app.config["FIELD_ENCRYPTION_KEYS"] = [new_key, *old_keys]
    crm_app.extensions.pop("schemadesk_cipher", None)
    try:
        result = crm_app.test_cli_runner().invoke(keys, ["rotate"])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("customer")
        after = raw_values(crm_app, pk)
        assert SECRET not in after and after != before
        # readable with the new key alone: rotation really re-encrypted
        crm_app.config["FIELD_ENCRYPTION_KEYS"] = [new_key]
        crm_app.extensions.pop("schemadesk_cipher", None)
        with crm_app.app_context():
            state().db.session.expire_all()
            assert state().db.session.get(state().models.model("customer"), pk).id_no == SECRET
    finally:
        crm_app.config["FIELD_ENCRYPTION_KEYS"] = [new_key, *old_keys]
        crm_app.extensions.pop("schemadesk_cipher", None)


def test_roles_matrix_cli(crm_app: Flask) -> None:
    runner = crm_app.test_cli_runner()
    result = runner.invoke(roles, ["matrix", "--format", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "role,entity,read,create,update,delete,import,export,view_sensitive"
    assert "operator,customer,1,1,1,0,1,1,0" in lines
    assert "auditor,audit_log,1,0,0,0,0,1,0" in lines
    assert "Admin,customer,1,1,1,1,1,1,1" in lines
    text = runner.invoke(roles, ["matrix"]).output
    assert "operator" in text and "customer" in text
    sync = runner.invoke(roles, ["sync"])
    assert sync.exit_code == 0 and "operator" in sync.output
