"""Settings are read once from the environment and fail fast (STYLE rule 7): every field
names its variable, a value that cannot work stops start-up with a message naming it."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings, SettingsError
from service.store.db import resolve_urls

#: Every variable with a valid non-default value and what the field becomes.
READS: list[tuple[str, str, str, Any]] = [
    ("database_url", "DATABASE_URL", "postgresql://u@h/db", "postgresql://u@h/db"),
    (
        "migrate_database_url",
        "FRONTLINE_MIGRATE_DATABASE_URL",
        "postgresql://owner@h/db",
        "postgresql://owner@h/db",
    ),
    ("db_role", "FRONTLINE_DB_ROLE", "frontline_ro", "frontline_ro"),
    (
        "read_urls",
        "FRONTLINE_READ_URLS",
        "postgresql://u@r1/db,postgresql://u@r2/db",
        "postgresql://u@r1/db,postgresql://u@r2/db",
    ),
    ("read_wait", "FRONTLINE_READ_WAIT", "0.25", 0.25),
    ("read_max_lag", "FRONTLINE_READ_MAX_LAG", "12", 12.0),
    ("read_check", "FRONTLINE_READ_CHECK", "0.5", 0.5),
    ("data_dir", "FRONTLINE_DATA_DIR", "/var/lib/frontline", Path("/var/lib/frontline")),
    ("pool_min", "FRONTLINE_POOL_MIN", "3", 3),
    ("pool_max", "FRONTLINE_POOL_MAX", "20", 20),
    ("db_timeout", "FRONTLINE_DB_TIMEOUT", "5", 5.0),
    ("host", "FRONTLINE_HOST", "0.0.0.0", "0.0.0.0"),  # noqa: S104 - a value, not a bind
    ("port", "FRONTLINE_PORT", "8080", 8080),
    ("max_body_bytes", "FRONTLINE_MAX_BODY", "1048576", 1048576),
    ("max_batch", "FRONTLINE_MAX_BATCH", "250", 250),
    ("max_page", "FRONTLINE_MAX_PAGE", "50", 50),
    ("gzip_min_bytes", "FRONTLINE_GZIP_MIN_BYTES", "4096", 4096),
    ("max_header_bytes", "FRONTLINE_MAX_HEADER_BYTES", "16384", 16384),
    ("max_header_line", "FRONTLINE_MAX_HEADER_LINE", "4096", 4096),
    ("header_timeout", "FRONTLINE_HEADER_TIMEOUT", "2.5", 2.5),
    ("max_connections", "FRONTLINE_MAX_CONNECTIONS", "5000", 5000),
    ("import_chunk", "FRONTLINE_IMPORT_CHUNK", "500", 500),
    ("max_import_bytes", "FRONTLINE_MAX_IMPORT", "1048576", 1048576),
    ("max_line_bytes", "FRONTLINE_MAX_LINE", "65536", 65536),
    ("import_max_errors", "FRONTLINE_IMPORT_MAX_ERRORS", "50", 50),
    ("group_max", "FRONTLINE_GROUP_MAX", "64", 64),
    ("fold_cache", "FRONTLINE_FOLD_CACHE", "5000", 5000),
    ("projections", "FRONTLINE_PROJECTIONS", "off", False),
    ("rebuild_workers", "FRONTLINE_REBUILD_WORKERS", "3", 3),
    ("rebuild_stale", "FRONTLINE_REBUILD_STALE", "false", False),
    ("anonymous_reads", "FRONTLINE_ANONYMOUS_READS", "true", "true"),
    ("key_cache", "FRONTLINE_KEY_CACHE", "0.5", 0.5),
    (
        "cors_origins",
        "FRONTLINE_CORS_ORIGINS",
        "https://a.example.org,http://localhost:5173",
        "https://a.example.org,http://localhost:5173",
    ),
    ("rate_limit", "FRONTLINE_RATE_LIMIT", "600", 600),
    ("anonymous_rate_limit", "FRONTLINE_ANONYMOUS_RATE_LIMIT", "60", 60),
    ("streams_per_key", "FRONTLINE_STREAMS_PER_KEY", "4", 4),
    ("anonymous_streams", "FRONTLINE_ANONYMOUS_STREAMS", "10", 10),
    ("stream_heartbeat", "FRONTLINE_STREAM_HEARTBEAT", "2.5", 2.5),
    ("stream_poll", "FRONTLINE_STREAM_POLL", "0.2", 0.2),
    ("stream_stall", "FRONTLINE_STREAM_STALL", "5", 5.0),
    (
        "signing_key_file",
        "FRONTLINE_SIGNING_KEY_FILE",
        "/etc/frontline/head.pem",
        "/etc/frontline/head.pem",
    ),
    ("verify_sample", "FRONTLINE_VERIFY_SAMPLE", "2500", 2500),
    ("log_format", "FRONTLINE_LOG_FORMAT", "json", "json"),
    ("log_level", "FRONTLINE_LOG_LEVEL", "debug", "debug"),
    ("workers", "FRONTLINE_WORKERS", "4", 4),
    ("db_pooler", "FRONTLINE_DB_POOLER", "transaction", "transaction"),
    (
        "direct_url",
        "FRONTLINE_DIRECT_URL",
        "postgresql://u@primary/db",
        "postgresql://u@primary/db",
    ),
]
INTEGER_VARIABLES = [env for _, env, _, expected in READS if type(expected) is int]
FLOAT_VARIABLES = [env for _, env, _, expected in READS if type(expected) is float]
VARIABLES = [spec.metadata["env"] for spec in fields(Settings)]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Frontline variable from the outer environment leaks into a test."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_every_field_names_its_variable_and_is_tested() -> None:
    """Each setting has an environment variable, and this file reads each one."""
    assert all(spec.metadata.get("env") for spec in fields(Settings))
    assert sorted(name for name, *_ in READS) == sorted(spec.name for spec in fields(Settings))


def test_defaults_without_environment() -> None:
    """With no variables set, the production defaults apply and pass the checks."""
    assert Settings.from_env() == Settings()


@pytest.mark.parametrize(("name", "env", "raw", "expected"), READS)
def test_each_variable_is_read(
    monkeypatch: pytest.MonkeyPatch, name: str, env: str, raw: str, expected: Any
) -> None:
    """Setting one variable changes exactly its field, converted to the field's type."""
    monkeypatch.setenv(env, raw)
    settings = Settings.from_env()
    assert getattr(settings, name) == expected
    others = {spec.name for spec in fields(Settings)} - {name}
    assert all(getattr(settings, other) == getattr(Settings(), other) for other in others)


def test_all_variables_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """All variables set at once are all read."""
    for _, env, raw, _ in READS:
        monkeypatch.setenv(env, raw)
    settings = Settings.from_env()
    assert {name: getattr(settings, name) for name, *_ in READS} == {
        name: expected for name, _, _, expected in READS
    }


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """``FRONTLINE_PORT=`` keeps the default rather than failing to parse ''."""
    monkeypatch.setenv("FRONTLINE_PORT", "")
    monkeypatch.setenv("DATABASE_URL", "")
    settings = Settings.from_env()
    assert (settings.port, settings.database_url) == (8000, None)


def test_overrides_win_and_none_is_no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Command-line overrides beat the environment; an override of None leaves it alone."""
    monkeypatch.setenv("FRONTLINE_PORT", "8080")
    monkeypatch.setenv("FRONTLINE_HOST", "10.0.0.1")
    settings = Settings.from_env(port=9000, host=None)
    assert (settings.port, settings.host) == (9000, "10.0.0.1")


@pytest.mark.parametrize(
    ("env", "raw"),
    [
        *[(env, raw) for env in FLOAT_VARIABLES for raw in ("soon", "0", "-1", "nan", "inf")],
    ],
)
def test_a_duration_must_be_a_positive_number(
    monkeypatch: pytest.MonkeyPatch, env: str, raw: str
) -> None:
    """A duration variable set to text, zero, a negative number, nan or inf stops
    Settings.from_env with an error naming the variable."""
    monkeypatch.setenv(env, raw)
    with pytest.raises(SettingsError, match=env):
        Settings.from_env()


@pytest.mark.parametrize("env", INTEGER_VARIABLES)
@pytest.mark.parametrize("raw", ["ten", "1.5", "0x10"])
def test_a_bad_integer_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, raw: str
) -> None:
    """A number that is not an integer stops start-up with the variable and the bad value."""
    monkeypatch.setenv(env, raw)
    with pytest.raises(SettingsError, match=env) as caught:
        Settings.from_env()
    assert repr(raw) in str(caught.value)


@pytest.mark.parametrize("raw", ["yaml", "JSON", "text"])
def test_a_bad_log_format_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    """Only auto, json and console are log formats; anything else names FRONTLINE_LOG_FORMAT."""
    monkeypatch.setenv("FRONTLINE_LOG_FORMAT", raw)
    with pytest.raises(SettingsError, match="FRONTLINE_LOG_FORMAT"):
        Settings.from_env()


@pytest.mark.parametrize("raw", ["auto", "json", "console"])
def test_each_log_format_is_accepted(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    """The three documented log formats are accepted."""
    monkeypatch.setenv("FRONTLINE_LOG_FORMAT", raw)
    assert Settings.from_env().log_format == raw


def test_pool_min_above_pool_max_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pool that must keep more connections open than it may open cannot work."""
    monkeypatch.setenv("FRONTLINE_POOL_MIN", "8")
    monkeypatch.setenv("FRONTLINE_POOL_MAX", "4")
    with pytest.raises(SettingsError, match="FRONTLINE_POOL_MIN exceeds FRONTLINE_POOL_MAX"):
        Settings.from_env()


def test_pool_min_equal_to_pool_max_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed-size pool is allowed."""
    monkeypatch.setenv("FRONTLINE_POOL_MIN", "5")
    monkeypatch.setenv("FRONTLINE_POOL_MAX", "5")
    assert (Settings.from_env().pool_min, Settings.from_env().pool_max) == (5, 5)


def test_with_checks_again() -> None:
    """A copy with changed fields is checked like one read from the environment."""
    with pytest.raises(SettingsError, match="FRONTLINE_POOL_MIN"):
        Settings().with_(pool_min=20)
    with pytest.raises(SettingsError, match="FRONTLINE_LOG_FORMAT"):
        Settings().with_(log_format="xml")


@pytest.mark.parametrize(
    ("env", "raw"),
    [
        ("FRONTLINE_PORT", "0"),
        ("FRONTLINE_PORT", "65536"),
        ("FRONTLINE_DB_ROLE", "bad-role"),
        ("FRONTLINE_REBUILD_WORKERS", "-1"),
        ("FRONTLINE_CORS_ORIGINS", "https://a.example.org/"),
        ("FRONTLINE_CORS_ORIGINS", "a.example.org"),
        ("FRONTLINE_CORS_ORIGINS", "https://a.example.org/app"),
        ("FRONTLINE_CORS_ORIGINS", "*,https://a.example.org"),
        ("FRONTLINE_CORS_ORIGINS", "https://*.example.org"),
        ("FRONTLINE_DB_POOLER", "session"),
        ("FRONTLINE_DB_POOLER", "pgbouncer"),
        ("FRONTLINE_READ_URLS", "replica.example.org:5432"),
        ("FRONTLINE_READ_URLS", "postgresql://u@r1/db,mysql://u@r2/db"),
        ("FRONTLINE_READ_WAIT", "-1"),
        ("FRONTLINE_READ_MAX_LAG", "0"),
    ],
)
def test_other_impossible_values_fail_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, raw: str
) -> None:
    """A port outside 1..65535, a role name that is not an identifier, a negative number
    of rebuild workers, a CORS origin that is not an origin (a path, a trailing slash, no
    scheme, a wildcard, ``*`` beside others), a read replica that is not a PostgreSQL URL,
    a replica wait or lag bound that is not a positive number, or a pooler mode other than
    none and transaction names its variable."""
    monkeypatch.setenv(env, raw)
    with pytest.raises(SettingsError, match=env):
        Settings.from_env()


@pytest.mark.parametrize(
    ("name", "env"),
    [
        ("pool_min", "FRONTLINE_POOL_MIN"),
        ("pool_max", "FRONTLINE_POOL_MAX"),
        ("max_body_bytes", "FRONTLINE_MAX_BODY"),
        ("max_batch", "FRONTLINE_MAX_BATCH"),
        ("max_page", "FRONTLINE_MAX_PAGE"),
        ("import_chunk", "FRONTLINE_IMPORT_CHUNK"),
        ("max_import_bytes", "FRONTLINE_MAX_IMPORT"),
        ("group_max", "FRONTLINE_GROUP_MAX"),
        ("fold_cache", "FRONTLINE_FOLD_CACHE"),
        ("max_header_bytes", "FRONTLINE_MAX_HEADER_BYTES"),
        ("max_header_line", "FRONTLINE_MAX_HEADER_LINE"),
        ("streams_per_key", "FRONTLINE_STREAMS_PER_KEY"),
        ("anonymous_streams", "FRONTLINE_ANONYMOUS_STREAMS"),
        ("verify_sample", "FRONTLINE_VERIFY_SAMPLE"),
        ("workers", "FRONTLINE_WORKERS"),
    ],
)
@pytest.mark.parametrize("raw", ["0", "-3"])
def test_a_count_below_one_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, env: str, raw: str
) -> None:
    """A size or count below 1 cannot work: start-up stops, naming the setting."""
    monkeypatch.setenv(env, raw)
    with pytest.raises(SettingsError, match=rf"{env} \({name}\) must be at least 1"):
        Settings.from_env()


@pytest.mark.parametrize(
    "env",
    [
        "FRONTLINE_RATE_LIMIT",
        "FRONTLINE_ANONYMOUS_RATE_LIMIT",
        "FRONTLINE_MAX_CONNECTIONS",
        "FRONTLINE_GZIP_MIN_BYTES",
    ],
)
def test_a_negative_limit_is_refused_and_zero_is_not(
    monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    """Rate limits, the connection cap and the gzip threshold take 0 (no limit; for
    connections, the file limit minus a reserve; for gzip, never) but nothing below it."""
    monkeypatch.setenv(env, "0")
    Settings.from_env()
    monkeypatch.setenv(env, "-1")
    with pytest.raises(SettingsError, match=env):
        Settings.from_env()


def test_a_count_below_one_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The message for a count below 1 names the variable to fix, as for a bad integer.

    Regression test (``Settings.check``, the ``< 1`` loop): the message named
    the field (``max_batch must be at least 1``), not FRONTLINE_MAX_BATCH, although
    ``from_env`` promises to "fail fast with the variable's name". Same for every count.
    """
    monkeypatch.setenv("FRONTLINE_MAX_BATCH", "0")
    with pytest.raises(SettingsError, match="FRONTLINE_MAX_BATCH"):
        Settings.from_env()


def test_a_bad_log_level_fails_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only debug, info, warning and error are levels; anything else fails when read.

    Regression test (``Settings.check`` did not check ``log_level``): the
    value is accepted and start-up later dies in ``service/logging.py`` with a bare
    ``KeyError: 'VERBOSE'``.
    """
    monkeypatch.setenv("FRONTLINE_LOG_LEVEL", "verbose")
    with pytest.raises(SettingsError, match="FRONTLINE_LOG_LEVEL"):
        Settings.from_env()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("ON", True), ("yes", True), ("0", False), ("false", False)],
)
def test_switches_read_the_usual_spellings(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool
) -> None:
    """A true/false setting takes 1/0, true/false, yes/no, on/off in any case."""
    monkeypatch.setenv("FRONTLINE_PROJECTIONS", raw)
    assert Settings.from_env().projections is expected


def test_a_bad_switch_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A switch that is neither true nor false stops start-up, naming the variable."""
    monkeypatch.setenv("FRONTLINE_PROJECTIONS", "maybe")
    with pytest.raises(SettingsError, match="FRONTLINE_PROJECTIONS must be true or false"):
        Settings.from_env()


def test_cors_origins_are_a_list_of_origins_or_any(monkeypatch: pytest.MonkeyPatch) -> None:
    """``FRONTLINE_CORS_ORIGINS``: none by default; origins separated by commas (spaces
    aside, IPv6 and ports allowed); ``*`` alone for any."""
    assert Settings.from_env().cors_origin_list() == ()
    monkeypatch.setenv("FRONTLINE_CORS_ORIGINS", " https://a.example.org , http://[::1]:8080")
    assert Settings.from_env().cors_origin_list() == ("https://a.example.org", "http://[::1]:8080")
    monkeypatch.setenv("FRONTLINE_CORS_ORIGINS", "*")
    assert Settings.from_env().cors_origin_list() == ("*",)


def test_a_transaction_pooler_needs_a_direct_url() -> None:
    """``FRONTLINE_DB_POOLER=transaction`` without ``FRONTLINE_DIRECT_URL`` stops start-up,
    naming both (the live listener and the rebuild's lock need a session); with it, the URLs
    resolve."""
    pooled = Settings(database_url="postgresql://u@pooler/db", db_pooler="transaction")
    with pytest.raises(SettingsError, match=r"FRONTLINE_DB_POOLER.*FRONTLINE_DIRECT_URL"):
        resolve_urls(pooled)
    direct = resolve_urls(pooled.with_(direct_url="postgresql://u@primary/db"))
    assert direct.direct_url == "postgresql://u@primary/db"


def test_read_urls_split_between_urls_not_inside_a_multi_host_url() -> None:
    """``FRONTLINE_READ_URLS`` is split at a comma before a scheme only: a multi-host URL
    (``postgresql://h1,h2/db``) stays one replica; empty means no replica."""
    assert Settings().read_url_list() == ()
    urls = "postgresql://u@h1,h2/db, postgres://u@r2:5433/db?sslmode=require"
    assert Settings(read_urls=urls).read_url_list() == (
        "postgresql://u@h1,h2/db",
        "postgres://u@r2:5433/db?sslmode=require",
    )
