"""SchemaDesk's security manager: FAB's, with our policies on top."""

from __future__ import annotations

from flask_appbuilder.security.sqla.manager import SecurityManager


class SchemaDeskSecurityManager(SecurityManager):
    """FAB's SQLAlchemy security manager; roles come from the YAML (app.security.roles)."""
