"""Alembic migrations: raw SQL, real downgrades. Run through ``frontline migrate``."""

from alembic import context


def service_role() -> str:
    """The role the service acts as (``FRONTLINE_DB_ROLE``), passed in by ``frontline migrate``."""
    role = str(context.config.attributes.get("app_role", "frontline_app"))
    if not role.replace("_", "").isalnum():
        raise ValueError(f"unsafe role name {role!r}")
    return role
