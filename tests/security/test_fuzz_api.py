"""schemathesis against /api/v1/_openapi, as admin and as a restricted role: zero 5xx.

Bounded to a few examples per operation so it runs in well under three minutes
on SQLite. The number of cases run is printed (`-s`) at the end of the module.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import ADMIN_PASSWORD, CRM
from tests.security.conftest import PASSWORD, make_user

RUN: Counter[str] = Counter()
ENTITY_PATHS = (
    "^/api/v1/(tag|employee|customer|contact|follow_up|service_request|product|"
    "sales_order|campaign|article)/"
)


@pytest.fixture(scope="module")
def fuzz_app(app_factory: Any) -> Any:
    return app_factory(CRM, "sqlite")


def bearer(app: Any, username: str, password: str) -> dict[str, str]:
    client = app.test_client()
    response = client.post("/api/v1/security/login", json={
        "username": username, "password": password, "provider": "db"})
    return {"Authorization": f"Bearer {response.json['access_token']}"}


@pytest.fixture(scope="module")
def tokens(fuzz_app: Any) -> dict[str, dict[str, str]]:
    _uid, operator = make_user(fuzz_app, "operator")
    return {"admin": bearer(fuzz_app, "admin", ADMIN_PASSWORD),
            "operator": bearer(fuzz_app, operator, PASSWORD)}


@pytest.fixture(scope="module")
def api_schema(fuzz_app: Any, tokens: dict[str, dict[str, str]]) -> Any:
    client = fuzz_app.test_client()
    document = client.get("/api/v1/_openapi", headers=tokens["admin"]).json
    # Our generated entity APIs only: FAB's own security API is not ours to fuzz.
    document["paths"] = {p: v for p, v in document["paths"].items()
                         if re.match(ENTITY_PATHS, p)}
    schema = schemathesis.openapi.from_dict(document)
    schema.app = fuzz_app
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
def test_no_server_errors(case: Any, tokens: dict[str, dict[str, str]]) -> None:
    for role, headers in tokens.items():
        response = case.call(headers=headers)
        RUN[role] += 1
        RUN[f"{role}:{response.status_code // 100}xx"] += 1
        assert response.status_code < 500, (
            f"{role}: {case.method} {case.formatted_path} -> {response.status_code}: "
            f"{response.text[:500]} body={case.body!r}"
        )


def test_zz_report() -> None:
    print(f"\nschemathesis cases per role and status class: {dict(RUN)}")
    assert RUN["admin"] > 0 and RUN["operator"] > 0
    assert not any(k.endswith(":5xx") for k in RUN)
