"""Settings, read once from the environment. Each field names its variable."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import UnsupportedAlgorithm

from service.domain.audit import SigningKey


class SettingsError(ValueError):
    """A setting that cannot be understood; raised at start-up, never at request time."""


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else None


@dataclass(frozen=True, slots=True)
class Settings:
    """Frontline's configuration. Defaults are production defaults."""

    # --- database ---
    database_url: str | None = field(default=None, metadata={"env": "DATABASE_URL"})
    """PostgreSQL URL the service uses; unset: an embedded PostgreSQL in ``data_dir``."""
    migrate_database_url: str | None = field(
        default=None, metadata={"env": "FRONTLINE_MIGRATE_DATABASE_URL"}
    )
    """URL of the role that owns the schema, for migrations; defaults to ``database_url``."""
    db_role: str = field(default="frontline_app", metadata={"env": "FRONTLINE_DB_ROLE"})
    """Role the service acts as on every connection: no UPDATE, DELETE, TRUNCATE on events."""
    data_dir: Path = field(default=Path("data"), metadata={"env": "FRONTLINE_DATA_DIR"})
    """Folder of the embedded PostgreSQL (used only without ``DATABASE_URL``)."""
    pool_min: int = field(default=2, metadata={"env": "FRONTLINE_POOL_MIN"})
    """Fewest database connections kept open."""
    pool_max: int = field(default=10, metadata={"env": "FRONTLINE_POOL_MAX"})
    """Most database connections open at once."""
    db_timeout: float = field(default=30.0, metadata={"env": "FRONTLINE_DB_TIMEOUT"})
    """Seconds one database statement (or a new connection) may take before it is abandoned
    and the request answers 503: a database that stops answering never hangs a request."""

    # --- read replicas ---
    read_urls: str = field(default="", metadata={"env": "FRONTLINE_READ_URLS"})
    """PostgreSQL URLs of streaming replicas (comma-separated) that answer reads; writes and
    the head stay on ``DATABASE_URL``. Empty: every read goes to the primary."""
    read_wait: float = field(default=0.5, metadata={"env": "FRONTLINE_READ_WAIT"})
    """Seconds a read with ``min_position`` (or ``known_at=position:N``) waits for a replica
    to apply that position before the primary answers it."""
    read_max_lag: float = field(default=5.0, metadata={"env": "FRONTLINE_READ_MAX_LAG"})
    """Seconds a replica may trail the primary (the age of the oldest commit it has not
    applied) before it leaves the rotation; it comes back when it is within them again."""
    read_check: float = field(default=1.0, metadata={"env": "FRONTLINE_READ_CHECK"})
    """Seconds between checks of each replica's applied position and lag."""

    # --- http ---
    host: str = field(default="127.0.0.1", metadata={"env": "FRONTLINE_HOST"})
    """Address to listen on."""
    port: int = field(default=8000, metadata={"env": "FRONTLINE_PORT"})
    """Port to listen on."""
    max_body_bytes: int = field(default=10 * 1024 * 1024, metadata={"env": "FRONTLINE_MAX_BODY"})
    """Largest JSON body accepted (413 above); NDJSON imports stream (see ``max_line_bytes``)."""
    max_batch: int = field(default=1000, metadata={"env": "FRONTLINE_MAX_BATCH"})
    """Most events in one atomic batch (422 above)."""
    max_page: int = field(default=1000, metadata={"env": "FRONTLINE_MAX_PAGE"})
    """Largest ``limit`` of a page of events (422 above)."""
    gzip_min_bytes: int = field(default=1024, metadata={"env": "FRONTLINE_GZIP_MIN_BYTES"})
    """Answers of at least this many bytes are gzipped for clients that accept it (0: none)."""
    max_header_bytes: int = field(default=32 * 1024, metadata={"env": "FRONTLINE_MAX_HEADER_BYTES"})
    """Largest request head (request line and every header) in bytes: 431 and closed above."""
    max_header_line: int = field(default=8 * 1024, metadata={"env": "FRONTLINE_MAX_HEADER_LINE"})
    """Longest request line (414 above) or header line (431 above) in bytes; then closed."""
    header_timeout: float = field(default=10.0, metadata={"env": "FRONTLINE_HEADER_TIMEOUT"})
    """Seconds a connection has to deliver a whole request head, from its opening or from its
    previous answer: past it, 408 (or nothing, if it sent nothing) and the connection closes."""
    max_connections: int = field(default=0, metadata={"env": "FRONTLINE_MAX_CONNECTIONS"})
    """Most connections open at once; 0: the process's file limit minus 256. At the cap the
    connection waiting longest for its request head is closed for a new one (503 if none)."""

    # --- processes and poolers ---
    workers: int = field(default=1, metadata={"env": "FRONTLINE_WORKERS"})
    """Server processes sharing the listening socket (``frontline serve --workers N``)."""
    db_pooler: str = field(default="none", metadata={"env": "FRONTLINE_DB_POOLER"})
    """``transaction``: ``DATABASE_URL`` goes through a pooler in transaction mode (PgBouncer):
    no prepared statement outlives its statement, nothing is set per connection, and each
    write transaction sets its role itself (``SET LOCAL``); ``none``: a direct connection."""
    direct_url: str | None = field(default=None, metadata={"env": "FRONTLINE_DIRECT_URL"})
    """A direct (session) connection to the primary, for what a transaction pooler cannot
    carry: the live listener (``LISTEN``) and the rebuild's session lock; unset:
    ``database_url``."""

    # --- ingest ---
    import_chunk: int = field(default=10_000, metadata={"env": "FRONTLINE_IMPORT_CHUNK"})
    """Events committed together by an NDJSON import (larger: fewer refolds of busy places)."""
    max_import_bytes: int = field(
        default=256 * 1024 * 1024, metadata={"env": "FRONTLINE_MAX_IMPORT"}
    )
    """Largest source file ``POST /v1/imports`` accepts (413 above); read whole, then mapped."""
    max_line_bytes: int = field(default=1024 * 1024, metadata={"env": "FRONTLINE_MAX_LINE"})
    """Longest NDJSON line accepted; a longer one is a rejected line (its bytes are skipped)."""
    import_max_errors: int = field(default=1000, metadata={"env": "FRONTLINE_IMPORT_MAX_ERRORS"})
    """Rejected lines (and flagged rows) an import's answer lists; it counts them all."""
    group_max: int = field(default=512, metadata={"env": "FRONTLINE_GROUP_MAX"})
    """Most requests one group commit takes from the queue."""

    projections: bool = field(default=True, metadata={"env": "FRONTLINE_PROJECTIONS"})
    """Maintain the projections in each append (off: the log only; `frontline rebuild` later)."""
    fold_cache: int = field(default=1_000_000, metadata={"env": "FRONTLINE_FOLD_CACHE"})
    """Events whose places' folds stay in memory between commits (least recently used go)."""
    rebuild_workers: int = field(default=0, metadata={"env": "FRONTLINE_REBUILD_WORKERS"})
    """Worker processes that fold the log in a rebuild (0: one per core; at most 8)."""
    rebuild_stale: bool = field(default=True, metadata={"env": "FRONTLINE_REBUILD_STALE"})
    """At start-up, rebuild stale projections (another policy's rows, or behind the log) in
    the background while serving."""

    # --- live streams ---
    stream_heartbeat: float = field(default=10.0, metadata={"env": "FRONTLINE_STREAM_HEARTBEAT"})
    """Seconds of silence after which a live stream sends a heartbeat."""
    stream_poll: float = field(default=1.0, metadata={"env": "FRONTLINE_STREAM_POLL"})
    """Seconds between reads of a caught-up live stream when no commit wakes it (the process's
    database listener wakes it on every commit of every process; the poll covers its loss)."""
    stream_stall: float = field(default=30.0, metadata={"env": "FRONTLINE_STREAM_STALL"})
    """Seconds a client may take to accept one chunk before its stream is closed (it resumes
    from its last ``id``)."""
    streams_per_key: int = field(default=16, metadata={"env": "FRONTLINE_STREAMS_PER_KEY"})
    """Live streams one key may hold open at once in this process (429 above)."""
    anonymous_streams: int = field(default=100, metadata={"env": "FRONTLINE_ANONYMOUS_STREAMS"})
    """Live streams without a key open at once in this process, all clients together (503
    above)."""

    # --- access ---
    anonymous_reads: str = field(default="auto", metadata={"env": "FRONTLINE_ANONYMOUS_READS"})
    """``true``: routes that need ``read`` answer without a key; ``false``: never; ``auto``:
    true on the embedded database (``make run``), false with ``DATABASE_URL``."""
    rate_limit: int = field(default=120_000, metadata={"env": "FRONTLINE_RATE_LIMIT"})
    """Requests per key per minute (a token bucket of this size refilled over a minute),
    counted in each process (0: no limit)."""
    anonymous_rate_limit: int = field(
        default=6_000, metadata={"env": "FRONTLINE_ANONYMOUS_RATE_LIMIT"}
    )
    """Requests per client address per minute without a valid key (anonymous reads, missing,
    unknown or revoked keys), a token bucket like ``rate_limit``, per process (0: no limit)."""
    key_cache: float = field(default=5.0, metadata={"env": "FRONTLINE_KEY_CACHE"})
    """Seconds a key look-up is remembered (a revocation takes effect within them)."""
    cors_origins: str = field(default="", metadata={"env": "FRONTLINE_CORS_ORIGINS"})
    """Browser origins (``https://host[:port]``, comma-separated, or ``*``) whose pages may
    call the API (CORS); empty: none."""

    # --- audit ---
    signing_key_file: str = field(default="", metadata={"env": "FRONTLINE_SIGNING_KEY_FILE"})
    """An Ed25519 private key (PKCS#8 PEM) that signs the head; empty: heads go unsigned."""
    verify_sample: int = field(default=10_000, metadata={"env": "FRONTLINE_VERIFY_SAMPLE"})
    """Events whose places ``verify`` refolds by default (``projections=sample``): places
    picked at random while their events fit in it."""

    # --- logs ---
    log_format: str = field(default="auto", metadata={"env": "FRONTLINE_LOG_FORMAT"})
    """``json``, ``console``, or ``auto`` (console on a terminal, JSON elsewhere)."""
    log_level: str = field(default="info", metadata={"env": "FRONTLINE_LOG_LEVEL"})
    """Least severe level written: debug, info, warning, error."""

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Read every field from its variable; fail fast with the variable's name."""
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = _env(spec.metadata["env"])
            if raw is None:
                continue
            values[spec.name] = _convert(spec.name, spec.metadata["env"], raw, spec.default)
        settings = cls(**values)
        return settings.with_(**{k: v for k, v in overrides.items() if v is not None})

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed, checked again."""
        settings = replace(self, **changes)
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse values that cannot work."""
        for name in (
            "pool_min",
            "pool_max",
            "max_body_bytes",
            "max_batch",
            "max_page",
            "import_chunk",
            "max_import_bytes",
            "max_line_bytes",
            "import_max_errors",
            "group_max",
            "fold_cache",
            "max_header_bytes",
            "max_header_line",
            "streams_per_key",
            "anonymous_streams",
            "verify_sample",
            "workers",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{_env_name(name)} ({name}) must be at least 1")
        if self.pool_min > self.pool_max:
            raise SettingsError("FRONTLINE_POOL_MIN exceeds FRONTLINE_POOL_MAX")
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise SettingsError("FRONTLINE_LOG_LEVEL must be debug, info, warning or error")
        if self.rebuild_workers < 0:
            raise SettingsError(
                "FRONTLINE_REBUILD_WORKERS (rebuild_workers) must be 0 (one per core) or more"
            )
        for name in ("rate_limit", "anonymous_rate_limit"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{_env_name(name)} ({name}) must be 0 (no limit) or more")
        if self.gzip_min_bytes < 0:
            raise SettingsError(
                "FRONTLINE_GZIP_MIN_BYTES (gzip_min_bytes) must be 0 (no compression) or more"
            )
        if self.max_connections < 0:
            raise SettingsError(
                "FRONTLINE_MAX_CONNECTIONS (max_connections) must be 0 (the file limit minus "
                "256) or more"
            )
        if self.db_pooler not in ("none", "transaction"):
            raise SettingsError("FRONTLINE_DB_POOLER must be none or transaction")
        if self.anonymous_reads not in ("auto", "true", "false"):
            raise SettingsError("FRONTLINE_ANONYMOUS_READS must be auto, true or false")
        if self.log_format not in ("auto", "json", "console"):
            raise SettingsError("FRONTLINE_LOG_FORMAT must be auto, json or console")
        if not self.db_role.replace("_", "").isalnum():
            raise SettingsError("FRONTLINE_DB_ROLE must be letters, digits and '_'")
        if not 0 < self.port < 65536:
            raise SettingsError("FRONTLINE_PORT must be a TCP port")
        self.cors_origin_list()
        self.read_url_list()

    def cors_origin_list(self) -> tuple[str, ...]:
        """``cors_origins`` as a tuple of origins (``("*",)`` for any); SettingsError for an
        entry that is not an origin."""
        origins = tuple(o.strip() for o in self.cors_origins.split(",") if o.strip())
        if "*" in origins and len(origins) > 1:
            raise SettingsError("FRONTLINE_CORS_ORIGINS: '*' stands alone (any origin)")
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise SettingsError(
                    f"FRONTLINE_CORS_ORIGINS: {origin!r} is not an origin "
                    "(scheme://host[:port], no path, no trailing slash), nor '*'"
                )
        return origins

    def read_url_list(self) -> tuple[str, ...]:
        """``read_urls`` as a tuple of PostgreSQL URLs; SettingsError for one that is not."""
        # Split only before a scheme: a multi-host URL (postgresql://h1,h2/db) has commas too.
        urls = tuple(u.strip() for u in _READ_URL_SPLIT.split(self.read_urls) if u.strip())
        for url in urls:
            if not url.startswith(("postgresql://", "postgres://")):
                raise SettingsError(
                    "FRONTLINE_READ_URLS: each entry is a PostgreSQL URL "
                    f"(postgresql://...), not {url.split('@')[-1][:80]!r}"
                )
        return urls


_READ_URL_SPLIT: Final = re.compile(r",\s*(?=[a-z]+://)")
_ORIGIN: Final = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?"
)


def _env_name(name: str) -> str:
    return str(next(f.metadata["env"] for f in fields(Settings) if f.name == name))


def _convert(name: str, env: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{env} must be true or false, not {raw!r}")
    if isinstance(default, float):
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{env} ({name}) must be a number, not {raw!r}") from None
        if not value > 0 or value == float("inf"):
            raise SettingsError(f"{env} ({name}) must be a positive number of seconds")
        return value
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{env} ({name}) must be an integer, not {raw!r}") from None
    if isinstance(default, Path):
        return Path(raw)
    return raw


def load_signing_key(settings: Settings) -> SigningKey | None:
    """The head-signing key the settings name, or None; SettingsError when it cannot be read."""
    if not settings.signing_key_file:
        return None
    path = Path(settings.signing_key_file)
    try:
        return SigningKey.from_pem(path.read_bytes())
    except OSError as error:
        raise SettingsError(f"FRONTLINE_SIGNING_KEY_FILE: cannot read {path}: {error}") from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:  # TypeError: encrypted
        raise SettingsError(f"FRONTLINE_SIGNING_KEY_FILE: {path}: {error}") from None
