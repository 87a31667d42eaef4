"""Personal data that can be destroyed (数据销毁): data subjects, erasure, retention.

- `keys`: per-subject data keys wrapped by the instance key; seal, unseal, destroy.
- `sealing`: where sealed values get their key (ORM writes, bulk writes, audit diffs).
- `erase`: erase a subject (delete or anonymise, destroy its key, tombstone, audit).
- `retention`: `retention:` rules: preview, scheduled runs (once per slot), reports.
- `restore`: a restore keeps the tombstones and erases again what they name.
- `checks`: SD-E250…SD-E256, SD-W025…SD-W027.
- `views`, `cli`: the admin pages, the API call and `schemadesk erase` / `retention`.

Importing this package does no work; `init_app` is the init hook.
"""

from typing import Any


def init_app(app: Any, appbuilder: Any) -> None:
    """Init hook: sealing events, the erase API and pages, the retention job and schedule."""
    from app.privacy import retention, sealing, views
    from app.state import state

    sealing.install(app, state())
    views.register(app, appbuilder)
    retention.register_jobs()
    retention.start_schedule(app)
