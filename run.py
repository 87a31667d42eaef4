"""Embedded default: SQLite + inline jobs; migrates, creates admin, serves :5000."""

from __future__ import annotations

import argparse
import os
import sys
import time


def prepare(app: object) -> str | None:
    """Apply migrations, sync roles, create admin; return a generated password."""
    from app.migrate import apply, has_revisions, upgrade
    from app.security.roles import ensure_admin, sync_roles

    if has_revisions():
        upgrade()
    else:
        apply("initial schema")
    sync_roles()
    _user, generated = ensure_admin(os.environ.get("ADMIN_PASSWORD"))
    return generated


def welcome(url: str, password: str | None) -> str:
    """The last lines a start prints: where to go, and the one-time admin password."""
    lines = [f"SchemaDesk is running: {url}"]
    if password:
        lines += ["", "Sign in as:  admin", f"Password:    {password}",
                  "(shown once: write it down, then change it under your profile)"]
    width = max(len(line) for line in lines) + 4
    border = "+" + "-" * (width - 2) + "+"
    return "\n".join([border, *(f"| {line.ljust(width - 4)} |" for line in lines), border])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the SchemaDesk console.")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument("--verbose", action="store_true",
                        help="show the libraries' warnings and every request")
    args = parser.parse_args(argv)
    if not args.verbose:
        # FAB's permission sync and Werkzeug's request log would bury the one line
        # a first start must show: the admin password.
        import logging

        logging.getLogger().setLevel(logging.ERROR)
        for name in ("flask_appbuilder", "werkzeug", "alembic"):
            logging.getLogger(name).setLevel(logging.ERROR)

    from app import create_app
    from app.schema import SchemaError

    started = time.perf_counter()
    try:
        app = create_app()
    except SchemaError as exc:
        for problem in exc.problems:
            print(problem.format(), file=sys.stderr)
        return 2
    with app.app_context():
        generated = prepare(app)
    from app.notify.reminders import start_inline_scheduler

    start_inline_scheduler(app)  # reminders every minute when there is no Redis (RQ's otherwise)
    url = f"http://{args.host}:{args.port}/"
    print(f"Ready in {time.perf_counter() - started:.1f}s")
    print(welcome(url, generated))
    from werkzeug.serving import run_simple

    from app.designer.reload import SchemaReloader

    # The dispatcher swaps in a rebuilt app when an admin applies a new schema version.
    run_simple(args.host, args.port, SchemaReloader(app=app), threaded=True, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
