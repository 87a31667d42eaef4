"""Shared fixtures: real databases (SQLite, PostgreSQL, MariaDB), apps, clients.

Every test session gets its own PostgreSQL and MariaDB databases (created here,
dropped at the end), so parallel runs never see each other's rows. Where a
service does not answer, its tests skip with the reason — except under CI=true,
where they fail.
"""

from __future__ import annotations

import os
import uuid
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
CRM = ROOT / "schema" / "crm.yaml"
LIBRARY = ROOT / "schema" / "examples" / "library.yaml"
ADMIN_PASSWORD = "Admin-Pass-2024!"
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", "postgresql", "mariadb"]

_created: list[tuple[str, str]] = []


def service_missing(what: str, exc: Exception) -> None:
    message = f"{what} is not reachable ({str(exc).splitlines()[0]})"
    if IN_CI:
        pytest.fail(f"{message}; CI must run every backend")
    pytest.skip(message)


def new_database(backend: str, tmp_dir: Path) -> str:
    """Create an empty database on `backend` and return its SQLAlchemy URL."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_dir / f'sd_{uuid.uuid4().hex[:8]}.db'}"
    name = f"sd_{uuid.uuid4().hex[:12]}"
    admin_url = PG_URL if backend == "postgresql" else MARIADB_URL
    try:
        engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            if backend == "postgresql":
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            else:
                conn.execute(
                    sa.text(
                        f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
                )
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any connection failure means "missing"
        service_missing(backend, exc)
    _created.append((backend, name))
    url = sa.engine.make_url(admin_url).set(database=name)
    return url.render_as_string(hide_password=False)


def drop_databases() -> None:
    for backend, name in _created:
        admin_url = PG_URL if backend == "postgresql" else MARIADB_URL
        try:
            engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                if backend == "postgresql":
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                else:
                    conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
            engine.dispose()
        except Exception:  # noqa: BLE001 - cleanup is best effort
            pass


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    drop_databases()


def build_app(
    schema: Path,
    database_url: str,
    instance: Path,
    migrations: Path | None = None,
    **overrides: Any,
) -> Any:
    """Create an app on `database_url`, migrated, roles synced, admin created."""
    from app import create_app
    from run import prepare

    config = {
        "SCHEMA_PATH": str(schema),
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(instance),
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "TESTING": True,
    }
    if migrations is not None:
        config["MIGRATIONS_DIR"] = str(migrations)
    config.update(overrides)
    os.environ["ADMIN_PASSWORD"] = ADMIN_PASSWORD
    app = create_app(config)
    with app.app_context():
        prepare(app)
    return app


@pytest.fixture(scope="session")
def app_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """`app_factory(schema, backend, **config)` -> a migrated app on a fresh database.

    The CRM schema uses its committed migrations; any other schema gets its
    revisions written to a temporary folder.
    """

    def factory(schema: Path = CRM, backend: str = "sqlite", keep: bool = False,
                **overrides: Any) -> Any:
        """`keep`: the app lives for the whole session (a session fixture's); any other
        app is released when its test module ends (`_release_module_apps`)."""
        tmp = tmp_path_factory.mktemp(f"app_{backend}")
        migrations = None if Path(schema) == CRM else tmp / "migrations"
        url = new_database(backend, tmp)
        app = build_app(Path(schema), url, tmp / "instance", migrations, **overrides)
        if keep:
            _KEPT.add(app)
        return app

    return factory


_KEPT: weakref.WeakSet[Any] = weakref.WeakSet()  # session fixtures' apps


@pytest.fixture(scope="module", autouse=True)
def _release_module_apps(request: pytest.FixtureRequest) -> Iterator[None]:
    """Release every app a test module built (by the factory or by hand): their session
    listeners and connections go, so a worker's memory and the database's connections do
    not grow with the suite. Session fixtures' apps (`keep`) stay."""
    from app import BUILT
    from app.state import release

    before = {id(a) for a in BUILT}
    yield
    for app in list(BUILT):
        if id(app) not in before and app not in _KEPT:
            release(app)
    log = os.environ.get("SD_MEMLOG")  # a file: each module's end, the worker's memory
    if log:
        import gc

        gc.collect()
        with open("/proc/self/statm") as fh:
            rss = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"{os.getpid()} {rss} MB apps={len(BUILT)} {request.node.nodeid}\n")


@pytest.fixture(scope="session", params=BACKENDS)
def crm_app(request: pytest.FixtureRequest, app_factory: Callable[..., Any]) -> Any:
    """The CRM app, once per backend for the whole session."""
    return app_factory(CRM, request.param, keep=True)


@pytest.fixture(scope="session", params=BACKENDS)
def library_app(request: pytest.FixtureRequest, app_factory: Callable[..., Any]) -> Any:
    return app_factory(LIBRARY, request.param, keep=True)


@pytest.fixture(scope="session")
def sqlite_crm_app(app_factory: Callable[..., Any]) -> Any:
    """The CRM app on SQLite only, for tests that are not about the database."""
    return app_factory(CRM, "sqlite", keep=True)


def login(client: Any, username: str = "admin", password: str = ADMIN_PASSWORD) -> Any:
    response = client.post("/login/", data={"username": username, "password": password})
    assert response.status_code == 302, response.data[:500]
    client.get("/lang/en")  # tests read English unless they switch
    return client


@pytest.fixture
def admin_client(crm_app: Any) -> Iterator[Any]:
    with crm_app.test_client() as client:
        yield login(client)


@pytest.fixture
def sqlite_admin_client(sqlite_crm_app: Any) -> Iterator[Any]:
    with sqlite_crm_app.test_client() as client:
        yield login(client)


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except Exception as exc:  # noqa: BLE001
        service_missing("redis", exc)
    return REDIS_URL


def phone_in(phones: Any, entity: str = "customer", field: str = "phone") -> Any:
    """The criterion "the sealed `field` is one of `phones`" (its blind index; call in an app
    context): a data subject's looked-up values are not stored in clear."""
    from app.privacy.lookup import equals
    from app.state import state

    spec = state().spec.entity(entity)
    return equals(state().models.table(entity), spec, spec.field(field), phones)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """The one Chromium of a worker: Playwright's sync API runs once per thread, so every
    browser test (tests/e2e, tests/notify) shares it."""
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
