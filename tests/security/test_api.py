"""The REST API: JWT, grants, row rules, masking, validation, OpenAPI."""

from __future__ import annotations

from flask import Flask

from tests.conftest import ADMIN_PASSWORD
from tests.security.conftest import PASSWORD, make_user
from tests.security.test_rows import setup_two_operators


def token(client, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/security/login", json={
        "username": username, "password": password, "provider": "db"})
    assert response.status_code == 200, response.data
    return {"Authorization": f"Bearer {response.json['access_token']}"}


def test_operator_api_rows_masking_and_404(crm_app: Flask) -> None:
    d = setup_two_operators(crm_app)
    client = crm_app.test_client()
    headers = token(client, d["a"]["name"])
    response = client.get("/api/v1/customer/?q=(page_size:100)", headers=headers)
    assert response.status_code == 200, response.data
    ids = set(response.json["ids"])
    assert d["a"]["cust"] in ids and d["b"]["cust"] not in ids
    row = client.get(f"/api/v1/customer/{d['a']['cust']}", headers=headers).json["result"]
    phone = d["a"]["phone"]
    assert row["phone"] == phone[:3] + "****" + phone[-4:]
    assert row["id_no"] == "1101**********1234"
    assert client.get(f"/api/v1/customer/{d['b']['cust']}", headers=headers).status_code == 404
    assert client.put(f"/api/v1/customer/{d['b']['cust']}", json={"name": "x"},
                      headers=headers).status_code == 404
    # not granted: delete
    assert client.delete(f"/api/v1/customer/{d['a']['cust']}", headers=headers).status_code == 403
    # masked value sent back unchanged keeps the stored one
    response = client.put(f"/api/v1/customer/{d['a']['cust']}",
                          json={"phone": row["phone"], "remark": "called"}, headers=headers)
    assert response.status_code == 200, response.data
    admin = token(client, "admin", ADMIN_PASSWORD)
    clear = client.get(f"/api/v1/customer/{d['a']['cust']}", headers=admin).json["result"]
    assert clear["phone"] == phone and clear["remark"] == "called"
    assert clear["id_no"] == "110101199001011234"


def test_api_validation_messages_and_auditor_read_only(crm_app: Flask) -> None:
    _uid, auditor = make_user(crm_app, "auditor")
    client = crm_app.test_client()
    admin = token(client, "admin", ADMIN_PASSWORD)
    response = client.post("/api/v1/customer/", json={"name": "V", "phone": "not a phone",
                                                      "kind": "nope"},
                           headers={**admin, "Accept-Language": "en"})
    assert response.status_code == 422
    assert "Not a valid phone number." in str(response.json)
    # Enum messages name the choices by their labels (what the reader sees), not keys.
    assert "is not one of the choices: Person, Company." in str(response.json)
    headers = token(client, auditor)
    assert client.get("/api/v1/customer/", headers=headers).status_code == 200
    assert client.post("/api/v1/customer/", json={"name": "x"}, headers=headers).status_code == 403
    assert client.get("/api/v1/_openapi", headers=headers).status_code == 200


def test_unauthenticated_api_is_401(crm_app: Flask) -> None:
    client = crm_app.test_client()
    assert client.get("/api/v1/customer/").status_code == 401
