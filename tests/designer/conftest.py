"""What the designer's form tests share: an app per schema (both shipped ones and
the module's own) and a signed-in admin without a draft."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CRM, LIBRARY, login


def schema_app(name: str, own_name: str, own_text: str, app_factory: Callable[..., Any],
               tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A SQLite app on `crm`, `library`, or the module's own schema (`own_name`)."""
    if name == own_name:
        path = tmp_path_factory.mktemp(own_name) / f"{own_name}.yaml"
        path.write_text(own_text, encoding="utf-8")
    else:
        path = CRM if name == "crm" else LIBRARY
    return app_factory(Path(path), "sqlite")


@pytest.fixture
def admin(designer_app: Any) -> Iterator[Any]:
    """A signed-in admin client with no draft (zh pages); `designer_app` is the module's."""
    with designer_app.test_client() as client:
        login(client)
        client.get("/lang/zh")
        client.post("/designer/discard")
        yield client
