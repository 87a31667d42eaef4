"""A cache of chart aggregates, so two operators opening the dashboard do not both scan.

At a million rows a GROUP BY costs tens to hundreds of milliseconds; the
dashboard runs several. The answer of a chart depends on:

- the chart (entity, name or KPI measure) and the reader's language (labels);
- the reader's scope: the row rule compiled with its values (`$me` ids, trees),
  and whether the reader sees sensitive fields: two users with the same scope
  share an entry, two with different scopes never do (a scoped number is never
  shown to someone else);
- the list filters of the request (`q`, `_flt_*`, `f_*`);
- the data: a per-entity generation counter, bumped after every committed
  write to the entity (ORM flushes and bulk statements, `install` below), is
  part of the key, so a write makes the old entries unreachable at once. A
  chart grouped by a relation also keys on the target's generation (its titles
  are the labels).

Entries live in Redis when `REDIS_URL` is set (shared by every worker; the
generations are Redis counters), else in this process (a small LRU; the
generation is per process, so `TTL` bounds what another worker's write leaves
stale).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_request_context, request

from app.i18n import current_lang
from app.records import records
from app.state import listen, state

TTL = 60  # seconds an entry lives at most (another worker's write without Redis)
MAX_ENTRIES = 2000
_PREFIX = "sd:charts:"
_lock = threading.Lock()
_local: OrderedDict[str, tuple[float, Any]] = OrderedDict()
_generations: dict[str, int] = {}


def _redis() -> Any | None:
    url = current_app.config.get("REDIS_URL") if current_app else None
    if not url:
        return None
    client = current_app.extensions.get("schemadesk_charts_redis")
    if client is None:
        from redis import Redis

        client = Redis.from_url(url, socket_timeout=0.5)
        current_app.extensions["schemadesk_charts_redis"] = client
    return client


def generation(entity: str) -> int:
    """The entity's write generation (0 until its first write)."""
    client = _redis()
    if client is not None:
        try:
            return int(client.get(f"{_PREFIX}gen:{entity}") or 0)
        except Exception:  # noqa: BLE001 - Redis down: no caching beats wrong numbers
            return -int(time.time() * 1000)
    return _generations.get(entity, 0)


def bump(entities: set[str]) -> None:
    """Make every cached aggregate of `entities` stale (after a committed write)."""
    client = _redis()
    for entity in entities:
        if client is not None:
            try:
                client.incr(f"{_PREFIX}gen:{entity}")
            except Exception:  # noqa: BLE001,S112 - entries expire by TTL anyway
                continue
        else:
            with _lock:
                _generations[entity] = _generations.get(entity, 0) + 1


def scope_key(entity: str) -> str:
    """The reader's scope as text: the compiled row rule with its values, and masking."""
    service = records(entity)
    clause = service.row_clause()
    if clause is None:
        scope = "all"
    else:
        try:
            dialect = state().db.engine.dialect
            scope = str(clause.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        except Exception:  # noqa: BLE001 - a value with no literal form: per user
            scope = f"user:{getattr(service.user, 'id', None)}"
    return f"{scope}|sensitive={service.sees_sensitive}"


def filters_key() -> str:
    if not has_request_context():
        return ""
    return json.dumps(sorted((k, v) for k, v in request.args.items(multi=True)
                             if k == "q" or k.startswith(("_flt_", "f_"))))


def cache_key(entity: str, what: str, related: tuple[str, ...] = ()) -> str:
    gens = [generation(e) for e in (entity, *related)]
    database = state().db.engine.url.render_as_string(hide_password=True)  # one app's data
    raw = json.dumps([database, entity, what, current_lang(), scope_key(entity), filters_key(),
                      gens])
    return _PREFIX + hashlib.sha256(raw.encode()).hexdigest()


def remember(key: str, compute: Any) -> Any:
    """The JSON-ready value under `key`, computed (and stored) when missing."""
    client = _redis()
    if client is not None:
        try:
            found = client.get(key)
            if found is not None:
                return json.loads(found)
        except Exception:  # noqa: BLE001 - Redis down: compute
            return compute()
        value = compute()
        try:
            client.set(key, json.dumps(value), ex=TTL)
        except Exception:  # noqa: BLE001,S110 - not cached this time
            pass
        return value
    now = time.monotonic()
    with _lock:
        hit = _local.get(key)
        if hit is not None and hit[0] > now:
            _local.move_to_end(key)
            return hit[1]
    value = compute()
    with _lock:
        _local[key] = (now + TTL, value)
        while len(_local) > MAX_ENTRIES:
            _local.popitem(last=False)
    return value


def cached_aggregate(entity_name: str, chart: Any, filters: Any | None = None) -> Any:
    """`aggregate.aggregate`, through the cache (a `ChartData`)."""
    from app.charts import aggregate

    entity = state().spec.entity(entity_name)
    related: tuple[str, ...] = ()
    if chart.group_by and entity.has_field(chart.group_by):
        target = entity.field(chart.group_by).to
        related = (target,) if target else ()
    key = cache_key(entity_name, f"chart:{chart.name}", related)
    found = remember(key, lambda: aggregate.aggregate(entity_name, chart, filters).as_json())
    return aggregate.ChartData(
        name=found["name"], type=found["type"], title=found["title"],
        measure_label=found["measure"], labels=found["labels"], values=found["values"],
        time_series=found["time_series"], truncated=found["truncated"])


def cached_kpi(entity_name: str, measure: Any, filters: Any | None = None) -> float | None:
    """`aggregate.kpi_value`, through the cache."""
    from app.charts import aggregate

    key = cache_key(entity_name, f"kpi:{measure.func}:{measure.field}")
    return remember(key, lambda: aggregate.kpi_value(entity_name, measure, filters))


# -- the write side: generations bumped after commit -------------------------------------


class Invalidator:
    """Collects the entities a transaction wrote; bumps their generations after commit."""

    def __init__(self, app: Any, tables: dict[str, str]):
        self.app = app
        self.tables = tables  # table name -> entity name

    def _note(self, session: Any, names: set[str]) -> None:
        if names:
            session.info.setdefault("sd_chart_writes", set()).update(names)

    def after_flush(self, session: Any, _context: Any) -> None:
        names = set()
        for obj in [*session.new, *session.dirty, *session.deleted]:
            name = getattr(sa.inspect(obj).mapper.local_table, "name", None)
            if name in self.tables:
                names.add(self.tables[name])
        self._note(session, names)

    def do_orm_execute(self, orm_state: Any) -> None:
        if not (orm_state.is_insert or orm_state.is_update or orm_state.is_delete):
            return
        table = getattr(orm_state.statement, "table", None)
        name = getattr(table, "name", None)
        if name in self.tables:
            self._note(orm_state.session, {self.tables[name]})

    def after_commit(self, session: Any) -> None:
        names = session.info.pop("sd_chart_writes", None)
        if names:
            with self.app.app_context():
                bump(names)

    def after_rollback(self, session: Any) -> None:
        session.info.pop("sd_chart_writes", None)


def install(app: Any) -> Invalidator:
    """Attach the invalidation listeners to the app's sessionmaker."""
    st = state()
    tables = {st.models.table(e.name).name: e.name for e in st.spec.entities}
    for (entity, _field), table in st.models.m2m_tables.items():
        tables[table.name] = entity
    inv = Invalidator(app, tables)
    factory = st.db.session.session_factory
    listen(factory, "after_flush", inv.after_flush)
    listen(factory, "do_orm_execute", inv.do_orm_execute)
    listen(factory, "after_commit", inv.after_commit)
    listen(factory, "after_soft_rollback", lambda s, _t: inv.after_rollback(s))
    app.extensions["schemadesk_charts_cache"] = inv
    return inv


__all__ = ["bump", "cached_aggregate", "cached_kpi", "generation", "install"]
