"""The ``frontline`` command: serve, demo, migrate, import, rebuild, verify, signing-key,
export, keys, stop-db."""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import ipaddress
import os
import signal
import socket
import sys
from bisect import bisect_right
from collections.abc import AsyncIterator, Coroutine, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import asyncpg
import msgspec
import structlog
from sqlalchemy.exc import DBAPIError
from tqdm import tqdm

from contracts.audit import SignedHead, VerifyFailure, VerifyReport
from contracts.responses import AppendResult, ImportResult, Receipt
from service import bootstrap, query
from service.api.etags import content_etag, log_etag
from service.domain.audit import Head, SigningKey, key_id, public_raw, signature_valid
from service.domain.errors import FrontlineError
from service.domain.validation import MAX_DEPTH, too_deep
from service.interop.formats import READERS, read_all
from service.interop.rows import SourceRow
from service.logging import configure_logging
from service.projections.reads import StateQuery
from service.remote import add_remote_arguments, export_remote, import_remote, verify_remote
from service.settings import Settings, SettingsError, load_signing_key
from service.store import migrate
from service.store.audit import PROJECTION_MODES, ProjectionMode, SavedHead
from service.store.db import (
    embedded_running,
    resolve_urls,
    stop_embedded,
)
from service.usecases import places, registry
from service.usecases.demo import demo_commits, demo_files, load_demo
from service.usecases.export import LOG_FORMATS, front_csv, log_at, log_chunks
from service.usecases.ingest import import_ndjson, import_rows, split_lines
from service.usecases.rebuild import Staleness

log = structlog.get_logger("frontline.cli")


def _settings(args: argparse.Namespace) -> Settings:
    return resolve_urls(
        Settings.from_env(
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            data_dir=getattr(args, "data_dir", None),
            workers=getattr(args, "workers", None),
        )
    )


def tune_gc() -> None:
    """Fewer, cheaper garbage collections in a long-running process.

    What start-up made (modules, the app) is moved out of the collector's sight, and the
    youngest generation is collected less often: ingest allocates many short-lived objects
    that reference counting frees anyway.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _migrate(settings: Settings) -> None:
    """Migrate to head, then say whether the stored projections are stale.

    Stale rows (an older policy's, or behind the log) are not rebuilt here: ``frontline
    serve`` rebuilds them in the background at start-up while it serves (or run
    ``frontline rebuild``). Rows of a policy this code does not know to be older are left to
    ``frontline rebuild``.
    """
    assert settings.migrate_database_url is not None  # resolve_urls fills it
    migrate.upgrade(settings.migrate_database_url, "head", settings.db_role)
    if settings.projections:
        stale = asyncio.run(_staleness(settings))
        why = stale.reason
        if why is not None and not stale.rebuilt_at_start:
            log.warning("projections_stale", reason=why)
            sys.stderr.write(
                f"frontline: {why}.\n"
                "  `frontline serve` leaves them (and is not ready); run `frontline rebuild` "
                "to serve this code's policy.\n"
            )
        elif why is not None:
            log.warning("projections_stale", reason=why)
            sys.stderr.write(
                f"frontline: {why}: the projections are stale and need a rebuild.\n"
                "  `frontline serve` (and `make run`) rebuilds them at start-up in the "
                "background, serving meanwhile\n"
                "  (answers name the old rows' policy and position until the swap); or run "
                "`frontline rebuild` now.\n"
            )


async def _staleness(settings: Settings) -> Staleness:
    """Whether the projections are stale, and whether ``frontline serve`` rebuilds them by
    itself."""
    async with bootstrap.services(settings) as services:
        return await services.rebuilds.staleness()


async def _rebuild(settings: Settings) -> int:
    try:
        async with bootstrap.services(settings) as services:
            report = await services.rebuilds.rebuild()
    except FrontlineError as error:
        sys.stderr.write(f"frontline rebuild: {error.detail}\n")
        return 1
    sys.stderr.write(
        f"rebuilt the projections under {report.policy}: {report.rows} rows, up to position "
        f"{report.position} ({report.events} events folded by {report.workers} workers in "
        f"{report.seconds:.1f} s, {report.rounds} catch-up rounds)\n"
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Recompute the hash chain; print the report; exit 1 when the log does not verify
    (with ``--url``: the remote server's verification, through the client)."""
    signed: SignedHead | None = None
    if args.head is not None:
        try:
            saved_bytes = Path(args.head).read_bytes()
            if too_deep(saved_bytes):
                raise msgspec.DecodeError(f"nested more than {MAX_DEPTH} deep: not a saved head")
            signed = msgspec.json.decode(saved_bytes, type=SignedHead)
        except (OSError, msgspec.DecodeError) as error:
            sys.stderr.write(f"frontline verify: --head {args.head}: {error}\n")
            return 2
    if args.url:
        return verify_remote(args, signed)
    settings = _settings(args)
    saved: Head | None = None
    signature_error: str | None = None
    if signed is not None:
        saved = Head(
            position=signed.position, hash=signed.hash.lower(), recorded_at=signed.recorded_at
        )
        signature_error = _check_signature(settings, signed, saved)
    report = asyncio.run(_verify(settings, args.from_, args.to, saved, args.projections))
    if signature_error is not None and saved is not None:
        failure = report.failure
        if failure is None or failure.position >= saved.position:
            failure = VerifyFailure(position=saved.position, reason=signature_error)
        report = msgspec.structs.replace(report, ok=False, failure=failure, saved_head="broken")
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(report)).decode() + "\n")
    return 0 if report.ok else 1


def _check_signature(settings: Settings, signed: SignedHead, head: Head) -> str | None:
    """Why the saved head's signature does not hold, or None (unsigned heads pass)."""
    if signed.signature is None:
        return None
    signing = load_signing_key(settings)
    if signing is None:
        return "the saved head is signed, but no key is configured to check it"
    if not signature_valid(signing.public, head, signed.signature):
        return "the saved head's signature is not valid: the head was forged or altered"
    return None


async def _verify(
    settings: Settings,
    start: int | None,
    end: int | None,
    saved: Head | None,
    projections: ProjectionMode,
) -> VerifyReport:
    async with bootstrap.services(settings, signing=load_signing_key(settings)) as services:
        given = None if saved is None else SavedHead(position=saved.position, hash=saved.hash)
        return await services.audit.verify(start, end, given, projections)


def cmd_signing_key(args: argparse.Namespace) -> int:
    """Write a new Ed25519 head-signing key (PKCS#8 PEM, mode 0600); print its public key."""
    path = Path(args.file)
    key = SigningKey.generate()
    try:
        # Created with mode 0600 (never readable by others, even for an instant) and never
        # over an existing file.
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key.pem())
    except FileExistsError:
        sys.stderr.write(f"frontline signing-key: {path} exists; not overwriting it\n")
        return 1
    public = base64.b64encode(public_raw(key.public)).decode()
    sys.stdout.write(
        f"wrote {path}\nkey id {key_id(key.public)}, public key (base64) {public}\n"
        f"serve with FRONTLINE_SIGNING_KEY_FILE={path}\n"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write the log (or, with --front, the front as CSV) exactly as GET /v1/export does."""
    if args.url:
        return export_remote(args)
    settings = _settings(args)
    try:
        known = query.known_at(args.known_at)
        moment = query.valid_time(args.valid_at, "valid_at") if args.valid_at else None
    except FrontlineError as error:
        sys.stderr.write(f"frontline export: {error.detail}\n")
        return 1
    out = sys.stdout.buffer if args.out in (None, "-") else Path(args.out).open("wb")  # noqa: SIM115
    try:
        return asyncio.run(_export(settings, args, known, moment, out))
    finally:
        if out is not sys.stdout.buffer:
            out.close()


async def _export(
    settings: Settings,
    args: argparse.Namespace,
    known: query.KnownAt,
    moment: datetime | None,
    out: BinaryIO,
) -> int:
    async with bootstrap.services(settings) as services:
        if args.front:
            state_query = StateQuery(valid_at=moment or datetime.now(UTC), known_position=0)
            position, body = await front_csv(services.front, state_query, known)
            out.write(body)
            sys.stderr.write(f"front at position {position}: ETag {content_etag(body)}\n")
            return 0
        position, chain_hash = await log_at(services.front, known)
        with progress_bar(position, f"exporting {position} events", "events") as bar:
            async for chunk in log_chunks(services.store, position, args.format):
                out.write(chunk)
                # One line per event (and the CSV header, which is no event).
                bar.update(min(chunk.count(b"\n"), position - bar.n))
        sys.stderr.write(
            f"log up to position {position}: ETag {log_etag(args.format, position, chain_hash)}\n"
        )
        return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Rebuild every projection from the log."""
    return asyncio.run(_rebuild(_settings(args)))


class _Stop(BaseException):
    """SIGTERM or SIGINT asked ``frontline serve`` to stop (a BaseException, like
    KeyboardInterrupt, so that nothing on the way out mistakes it for an error)."""


def _stop_on_signals() -> None:
    """Turn SIGTERM and SIGINT into ``_Stop`` (once: a second signal during the clean-up
    does not interrupt it).

    uvicorn takes both signals while it serves, shuts down gracefully, then raises the
    signal it got again with the handlers found before it: these. Python's default for
    SIGTERM kills the process on the spot (exit -15, no ``finally``), which left the
    embedded PostgreSQL running; ``docker stop``, systemd and supervisors send SIGTERM.
    """
    stopping = False

    def handler(signum: int, frame: object) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise _Stop(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the API (migrating first on the embedded database, or with --migrate).

    SIGTERM and SIGINT both stop it cleanly: uvicorn finishes the requests in flight (a
    rebuild in flight is cancelled at once, its request answering 503), the app's lifespan
    closes the pool, and the embedded PostgreSQL stops if this process started it; the exit
    status is 0.
    """
    from service.app import create_app
    from service.server import Server, run_workers, server_config

    env = Settings.from_env(data_dir=args.data_dir)
    embedded = env.database_url is None
    # Stop the embedded PostgreSQL on the way out only if this process started it.
    started_here = embedded and not embedded_running(env.data_dir)
    _stop_on_signals()
    try:
        settings = _settings(args)
        if embedded or args.migrate:
            _migrate(settings)
        if args.demo:
            asyncio.run(_load_demo(settings, only_if_empty=True))
        if embedded:
            asyncio.run(_first_admin_key(settings))
        warn_if_exposed(settings)
        log.info("serving", url=base_url(settings), embedded=embedded, workers=settings.workers)
        key_file = (settings.data_dir / FIRST_ADMIN_KEY_FILE).absolute() if embedded else None
        if settings.workers > 1:
            run_workers(settings, partial(_serve_worker, note=serving_note(settings, key_file)))
            return 0
        tune_gc()
        projector = bootstrap.build_projector(settings)
        app = create_app(settings, projector=projector)

        def started() -> None:
            sys.stderr.write(serving_note(settings, key_file))
            sys.stderr.flush()

        # A rebuild in flight is cancelled when the shutdown starts (its request answers
        # 503), not awaited to its end with the other requests.
        Server(
            server_config(app, settings), on_stop=projector.cancel_rebuild, on_started=started
        ).run()
    except _Stop as stop:
        log.info("sys_shutdown", signal=str(stop))
    finally:
        if started_here:
            stop_embedded(env.data_dir)
            log.info("embedded_postgres_stopped", data_dir=str(env.data_dir))
    return 0


def _serve_worker(settings: Settings, sock: socket.socket, index: int, *, note: str) -> None:
    """One of ``frontline serve --workers N``'s processes: the app on the shared socket, its
    own pool, projector and live listener; stopped cleanly by SIGTERM or SIGINT. The first
    says where the map is once it listens (``note``)."""
    from service.app import create_app
    from service.server import Server, server_config

    configure_logging(settings.log_format, settings.log_level)
    _stop_on_signals()
    try:
        tune_gc()
        projector = bootstrap.build_projector(settings)
        app = create_app(settings, projector=projector)

        def started() -> None:
            if index == 0:
                sys.stderr.write(note)
                sys.stderr.flush()

        Server(
            server_config(app, settings), on_stop=projector.cancel_rebuild, on_started=started
        ).run(sockets=[sock])
    except _Stop as stop:
        log.info("sys_shutdown", signal=str(stop), worker=index)


FIRST_ADMIN_KEY_FILE = "first-admin-key"
"""Where, in the data folder, the first admin key of the local database is written."""


async def _first_admin_key(settings: Settings) -> None:
    """On a local database without any key, make an admin key, write it to a file only its
    owner may read (in the data folder) and show it once, saying where the file is."""
    async with bootstrap.owner_keys(settings) as store:
        if await store.list():
            return
        principal, key = await store.create("first-admin", "admin")
    log.info("authn_token_created", key_name=principal.name, role=principal.role)
    path = (settings.data_dir / FIRST_ADMIN_KEY_FILE).absolute()  # not resolve(): no links
    written = _write_private(path, key + "\n")
    saved = (
        [f"Saved in {path}", "(readable only by you: delete it once you keep the key elsewhere)."]
        if written is None
        else [f"NOT saved: it could not be written to {path}", f"({written}): keep it now."]
    )
    # A box of plain lines on stderr, so the key stands out between the JSON log lines.
    sys.stderr.write(
        boxed(
            [
                "An admin API key for this local database (shown once, keep it):",
                "",
                f"    {key}",
                "",
                *saved,
                "Send it as 'Authorization: Bearer <key>'; 'frontline keys create' makes others.",
            ]
        )
    )


def base_url(settings: Settings) -> str:
    """Where a browser on this machine reaches the server (an address that listens on every
    interface is reached through the loopback one)."""
    host = settings.host
    if host in ("", "0.0.0.0", "::", "[::]"):  # noqa: S104 (naming it, not binding it)
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def serving_note(settings: Settings, key_file: Path | None) -> str:
    """What ``frontline serve`` says last, once it listens: the map's URL, the API
    document's, and where the admin key is, as plain lines (not JSON log lines)."""
    url = base_url(settings)
    if key_file is None:
        key = "none written here (DATABASE_URL): 'frontline keys create --role admin --name NAME'"
    elif key_file.is_file():
        key = f"in {key_file}"
    else:
        key = f"not in {key_file} (deleted?): 'frontline keys create --role admin --name NAME'"
    lines = [
        "Frontline is serving.",
        f"  The map:            {url}/",
        f"  The API document:   {url}/schema/swagger  (OpenAPI JSON: {url}/schema/openapi.json)",
        f"  The admin API key:  {key}",
        "  Stop with Ctrl+C.",
    ]
    return "\n" + "\n".join(lines) + "\n\n"


def boxed(lines: Sequence[str]) -> str:
    """``lines`` framed in a box of ``+``, ``-`` and ``|`` (as wide as the longest line),
    with a blank line before and after it."""
    width = max(len(line) for line in lines)
    rule = "+" + "-" * (width + 2) + "+"
    body = "".join(f"| {line.ljust(width)} |\n" for line in lines)
    return f"\n{rule}\n{body}{rule}\n\n"


def _write_private(path: Path, text: str) -> str | None:
    """Write ``text`` to a file only its owner may read or write (0600, never through a
    symbolic link); None, or why it could not be written."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)  # a file left by an earlier database keeps its mode
            handle.write(text)
    except OSError as error:
        return error.strerror or str(error)
    return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to any address, so assume it is not loopback


def warn_if_exposed(settings: Settings) -> bool:
    """Warn (a log event and a line on stderr) when the service listens beyond this machine
    with anonymous reads on: anyone who reaches the address reads the log without a key."""
    if settings.anonymous_reads != "true" or is_loopback(settings.host):
        return False
    log.warning("anonymous_reads_exposed", host=settings.host, port=settings.port)
    sys.stderr.write(
        f"\nWARNING: listening on {settings.host} with anonymous reads on: anyone who can "
        "reach this address reads every event and the front without a key. Set "
        "FRONTLINE_ANONYMOUS_READS=false, or listen on 127.0.0.1.\n\n"
    )
    return True


def cmd_keys(args: argparse.Namespace) -> int:
    """Create (the key is printed once), list or revoke API keys, as the schema's owner."""
    try:
        return asyncio.run(_keys(_settings(args), args))
    except asyncpg.InsufficientPrivilegeError as error:
        sys.stderr.write(
            f"frontline keys: {error}: keys are made and revoked by the schema's owner; set "
            "FRONTLINE_MIGRATE_DATABASE_URL to the owner's URL\n"
        )
        return 1


async def _keys(settings: Settings, args: argparse.Namespace) -> int:
    # Keys are the owner's to make and revoke: the service role may only read them.
    async with bootstrap.owner_keys(settings) as store:
        if args.action == "create":
            principal, key = await store.create(args.name, args.role)
            log.info("authn_token_created", key_name=principal.name, role=principal.role)
            sys.stderr.write(f"key {principal.name!r} ({principal.role}), shown once:\n")
            sys.stdout.write(key + "\n")
            return 0
        if args.action == "revoke":
            if not await store.revoke(args.name):
                sys.stderr.write(f"frontline keys revoke: no live key named {args.name!r}\n")
                return 1
            log.info("authn_token_revoked", key_name=args.name)
            sys.stderr.write(f"revoked {args.name!r}\n")
            return 0
        for info in await store.list():
            state = f"revoked {info.revoked_at.isoformat()}" if info.revoked_at else "live"
            sys.stdout.write(
                f"{info.name}\t{info.role}\tcreated {info.created_at.isoformat()}\t{state}\n"
            )
        return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply the migrations (or take them down to a revision)."""
    settings = _settings(args)
    assert settings.migrate_database_url is not None
    try:
        if args.downgrade:
            migrate.downgrade(settings.migrate_database_url, args.downgrade, settings.db_role)
            log.info("migrated", direction="down", revision=args.downgrade)
        else:
            _migrate(settings)
            log.info("migrated", direction="up", revision=migrate.head_revision())
    except DBAPIError as error:
        # The database's own words (a refused downgrade says why and what to do).
        sys.stderr.write(f"frontline migrate: {error.orig}\n")
        return 1
    return 0


def progress_bar(total: int, label: str, unit: str) -> tqdm[NoReturn]:
    """A progress bar (tqdm) on stderr when stderr is a terminal, nothing elsewhere; ``total``
    units of ``unit`` make 100 %."""
    columns, rows = _terminal_size()
    return tqdm(
        total=total,
        desc=label,
        unit=unit,
        unit_scale=unit == "B",
        disable=None,  # None: drawn only on a terminal
        file=sys.stderr,
        ncols=columns,
        nrows=rows,
        mininterval=0.1,
    )


def _terminal_size() -> tuple[int, int]:
    """The terminal's columns and rows on stderr; 80 x 24 for what it does not tell (tqdm
    draws nothing on a terminal of size 0 x 0, as a fresh pseudo-terminal is)."""
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError):
        return 80, 24
    return size.columns or 80, size.lines or 24


async def _file_chunks(path: Path, bar: tqdm[NoReturn]) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            bar.update(len(chunk))
            yield chunk
            await asyncio.sleep(0)


async def _import(settings: Settings, path: Path, size: int) -> int:
    async with bootstrap.services(settings) as services:
        with progress_bar(size, f"importing {path.name}", "B") as bar:
            result = await import_ndjson(
                services.store,
                split_lines(_file_chunks(path, bar), settings.max_line_bytes),
                chunk_size=settings.import_chunk,
                max_errors=settings.import_max_errors,
            )
    return _report(result)


def _report(result: ImportResult) -> int:
    """The result as JSON on stdout, the summary on stderr; exit 2 when rows were rejected."""
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(result)).decode() + "\n")
    summary = (
        f"imported {result.accepted}, duplicates {result.duplicate}, rejected {result.rejected}"
        f", flagged {result.flagged}"
    )
    if result.unmapped:
        names = ", ".join(f"{u.side} ({u.events})" for u in result.unmapped_sides)
        more = "" if len(result.unmapped_sides) == result.unmapped else ", ..."
        summary += f"\nunmapped sides {result.unmapped}: {names}{more}"
    sys.stderr.write(summary + "\n")
    return 0 if result.rejected == 0 else 2


async def _import_format(settings: Settings, name: str, rows: list[SourceRow]) -> int:
    """Import the rows of a source file (``--format``), in chunks, with a progress bar that
    counts records: a record may span lines (a quoted cell with line breaks), so counting
    the line where each starts would stop short of the file's last lines."""
    starts = sorted(row.line for row in rows)
    async with bootstrap.services(settings) as services:
        with progress_bar(len(rows), f"importing {name}", "rows") as bar:

            def advance(line: int) -> None:
                done = bisect_right(starts, line)  # the records that start at or before it
                if done > bar.n:
                    bar.update(done - bar.n)

            result = await import_rows(
                services.store,
                rows,
                chunk_size=settings.import_chunk,
                progress=advance,
                max_errors=settings.import_max_errors,
            )
    return _report(result)


async def _load_demo(settings: Settings, *, only_if_empty: bool) -> None:
    async with bootstrap.services(settings) as services:
        store = services.store
        position, _ = await store.head()
        if only_if_empty and position > 0:
            log.info("demo_skipped", reason="the log is not empty", last_position=position)
            return
        loaded = await load_demo(store, demo_commits(demo_files()))
        # The registries after the reports: they name sides by their canonical ids and
        # grade their sources as the registry does, so no answer changes, and the demo's
        # commits keep their positions.
        sides, sources = await registry.load_default_registries(services.committer)
        log.info(
            "demo_loaded",
            accepted=loaded.accepted,
            duplicate=loaded.duplicate,
            commits=[f"{day}: position {last}" for day, last in loaded.commits],
            sides=sum(not r.duplicate for r in sides),
            sources=sum(not r.duplicate for r in sources),
        )


def cmd_demo(args: argparse.Namespace) -> int:
    """Load the demo, a commit per publication day (idempotent: a second load stores
    nothing new)."""
    asyncio.run(_load_demo(_settings(args), only_if_empty=False))
    return 0


async def _register_sides(settings: Settings, body: bytes | None) -> list[Receipt]:
    async with bootstrap.services(settings) as services:
        if body is None:
            return await registry.load_default_registry(services.committer)
        return await registry.register_sides(services.committer, body, submitter=None, admin=True)


def cmd_sides(args: argparse.Namespace) -> int:
    """Register sides from a registry file (one entry, or {"sides": [...]}), or the default
    registry of the seed's theatre; print the receipts; exit 2 when it was refused."""
    body = None if args.file is None else Path(args.file).read_bytes()
    return _append_command("sides", _register_sides(_settings(args), body))


async def _register_sources(settings: Settings, body: bytes | None) -> list[Receipt]:
    async with bootstrap.services(settings) as services:
        if body is None:
            return await registry.load_default_sources(services.committer)
        return await registry.register_sources(services.committer, body, submitter=None, admin=True)


def cmd_sources(args: argparse.Namespace) -> int:
    """Register sources from a registry file (one entry, or {"sources": [...]}), or the
    default source registry of the seed's theatre; print the receipts; exit 2 when it was
    refused."""
    body = None if args.file is None else Path(args.file).read_bytes()
    return _append_command("sources", _register_sources(_settings(args), body))


async def _merge(settings: Settings, place: str, body: bytes, undo: bool) -> list[Receipt]:
    async with bootstrap.services(settings) as services:
        if undo:
            return await places.unmerge_places(
                services.committer, services.store, place, body, submitter=None, admin=True
            )
        return await places.merge_places(
            services.committer, place, body, submitter=None, admin=True
        )


def cmd_merge(args: argparse.Namespace) -> int:
    """Merge a place into another (or, with --undo, retract the merge in force); print the
    receipt; exit 2 when it was refused."""
    fields = {"merged": args.merged, **({"notes": args.notes} if args.notes else {})}
    body = msgspec.json.encode(fields)
    return _append_command("merge", _merge(_settings(args), args.place, body, args.undo))


def _append_command(command: str, append: Coroutine[Any, Any, list[Receipt]]) -> int:
    """Run a command's append: print its receipts (exit 0), or the refusal and the field it
    names on stderr (exit 2; nothing was written)."""
    try:
        receipts = asyncio.run(append)
    except FrontlineError as error:
        where = f" ({error.field})" if error.field else ""
        sys.stderr.write(f"frontline {command}: refused{where}: {error.detail}\n")
        return 2
    sys.stdout.write(msgspec.json.encode(AppendResult(receipts=receipts)).decode() + "\n")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Bulk-import an NDJSON file of events, or a source file with ``--format``; exit 2 when
    some lines or rows were rejected."""
    path = Path(args.file)
    if not path.is_file():
        sys.stderr.write(f"frontline import: no such file: {path}\n")
        return 1
    if args.url:
        return import_remote(args, _report)
    tune_gc()
    if args.format not in (None, "ndjson"):
        data = path.read_bytes()
        try:
            # Read whole before anything is stored: an unreadable file stores nothing.
            rows = read_all(args.format, data)
        except ValueError as error:
            sys.stderr.write(f"frontline import: {path} is not a readable {args.format} file: ")
            sys.stderr.write(f"{error}\n")
            return 1
        return asyncio.run(_import_format(_settings(args), path.name, rows))
    return asyncio.run(_import(_settings(args), path, path.stat().st_size))


def cmd_stop_db(args: argparse.Namespace) -> int:
    """Stop the embedded PostgreSQL that `serve` left running in the data folder."""
    data_dir = Settings.from_env(data_dir=args.data_dir).data_dir
    stopped = stop_embedded(data_dir)
    sys.stderr.write(
        f"embedded PostgreSQL in {data_dir}: {'stopped' if stopped else 'not running'}\n"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(
        prog="frontline",
        description="Frontline, an event-sourced conflict database: serve its HTTP API and "
        "manage its log, projections and keys. 'frontline COMMAND --help' explains a command.",
    )
    commands = top.add_subparsers(
        dest="command", required=True, title="commands", metavar="COMMAND"
    )

    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", help="address to listen on (FRONTLINE_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (FRONTLINE_PORT, 8000)")
    serve.add_argument("--data-dir", type=Path, help="embedded database folder (./data)")
    serve.add_argument(
        "--workers",
        type=int,
        help="server processes sharing the port (FRONTLINE_WORKERS, 1); each has its own "
        "database pool of FRONTLINE_POOL_MAX connections",
    )
    serve.add_argument(
        "--migrate",
        action="store_true",
        help="apply migrations first (always done on the embedded database)",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="load the demo (the seed article's reports and the days after it, a commit per "
        "day) when the log is empty (make run does)",
    )
    serve.set_defaults(run=cmd_serve)

    demo = commands.add_parser(
        "demo", help="load the demo: the seed article's reports and the days after it"
    )
    demo.add_argument("--data-dir", type=Path, help="embedded database folder (./data)")
    demo.set_defaults(run=cmd_demo)

    sides = commands.add_parser(
        "sides",
        help="register sides: a registry file, or the default registry of the seed's theatre",
        description="Register sides in the side registry from a JSON file (one side's entry, "
        'or {"sides": [...]} as one atomic commit), or without a file the default registry of '
        "the seed's theatre (demo/sides.json, which the demo loads too). Exits 2 when the "
        "registry refused it (an alias another side holds, a bad colour).",
    )
    sides.add_argument("file", nargs="?", type=Path, help="registry file (JSON)")
    sides.add_argument("--data-dir", type=Path, help="embedded database folder (./data)")
    sides.set_defaults(run=cmd_sides)
    sources = commands.add_parser(
        "sources",
        help="register sources: a registry file, or the default source registry of the seed",
        description="Register sources in the source registry from a JSON file (one source's "
        'entry, or {"sources": [...]} as one atomic commit), or without a file the default '
        "source registry of the seed's theatre (demo/sources.json, which the demo loads too: "
        "the sources its reports cite, graded as they cite them). Exits 2 when the registry "
        "refuses it (the field named on stderr).",
    )
    sources.add_argument("file", nargs="?", type=Path, help="registry file (JSON)")
    sources.add_argument("--data-dir", type=Path, help="embedded database folder (./data)")
    sources.set_defaults(run=cmd_sources)

    merge = commands.add_parser(
        "merge",
        help="merge a place into another (the same place under two ids), or undo a merge",
        description="Merge MERGED into PLACE: from now on MERGED's events (earlier and later "
        "ones) make PLACE's timeline, and answers as known before the merge still show two "
        "places. With --undo, retract the merge in force. Exits 2 when it was refused (a "
        "place unknown or merged already, a chain of merges, no merge to undo).",
    )
    merge.add_argument("place", help="the surviving place's id")
    merge.add_argument("merged", help="the id of the place merged into it")
    merge.add_argument("--undo", action="store_true", help="retract the merge in force")
    merge.add_argument("--notes", help="why (one line, kept in the log)")
    merge.add_argument("--data-dir", type=Path, help="embedded database folder (./data)")
    merge.set_defaults(run=cmd_merge)

    mig = commands.add_parser("migrate", help="apply the database migrations")
    mig.add_argument("--data-dir", type=Path, help="embedded database folder (./data)")
    mig.add_argument("--downgrade", metavar="REVISION", help="go down to REVISION (or 'base')")
    mig.set_defaults(run=cmd_migrate)

    imp = commands.add_parser(
        "import",
        help="bulk-import events: an NDJSON file, or an ACLED, PLOVER or UCDP GED file (--format)",
        description="Bulk-import events from an NDJSON file (one event per line), or from an "
        "ACLED, PLOVER or UCDP GED file with --format. Exits 2 when some lines or rows were "
        "rejected (the JSON result on standard output names them).",
    )
    imp.add_argument("file", help="NDJSON file (one event per line), or a file in --format")
    imp.add_argument(
        "--format",
        choices=("ndjson", *sorted(READERS)),
        help="the file's format (default ndjson); docs/interop.md maps each to events",
    )
    imp.add_argument("--data-dir", type=Path, help="embedded database folder (./data)")
    add_remote_arguments(imp)
    imp.add_argument(
        "--idempotency-key",
        help="with --url: the key the ids of NDJSON lines without an id derive from (default "
        "a new one); give the same key to run an interrupted import again without duplicates",
    )
    imp.set_defaults(run=cmd_import)
    rebuild = commands.add_parser("rebuild", help="rebuild the projections from the log")
    rebuild.add_argument("--data-dir", type=Path, help="embedded database folder (./data)")
    rebuild.set_defaults(run=cmd_rebuild)

    verify = commands.add_parser(
        "verify",
        help="recompute the hash chain; check the links and the projections against the log",
    )
    verify.add_argument("--from", dest="from_", type=int, help="first position (1)")
    verify.add_argument("--to", type=int, help="last position (the head)")
    verify.add_argument(
        "--head", help="a head saved from GET /v1/audit/head: check the log still holds it"
    )
    verify.add_argument(
        "--projections",
        choices=PROJECTION_MODES,
        default="sample",
        help="refold the projection rows of places sampled at random (FRONTLINE_VERIFY_SAMPLE "
        "events; default), of every place (about as long as a rebuild), or none",
    )
    verify.add_argument("--data-dir", type=Path, help="embedded database folder (./data)")
    add_remote_arguments(verify)
    verify.set_defaults(run=cmd_verify)

    key = commands.add_parser("signing-key", help="write a new Ed25519 key that signs heads")
    key.add_argument("file", help="where to write it (refuses to overwrite)")
    key.set_defaults(run=cmd_signing_key)

    export = commands.add_parser(
        "export", help="write the log (or the front) reproducibly, as GET /v1/export does"
    )
    export.add_argument("--known-at", help="a timestamp or position:N (default: the latest)")
    export.add_argument("--format", choices=LOG_FORMATS, default="ndjson")
    export.add_argument("--front", action="store_true", help="the front as CSV instead")
    export.add_argument("--valid-at", help="with --front: the valid time (default now)")
    export.add_argument("--out", help="file to write (default: standard output)")
    export.add_argument("--data-dir", type=Path, help="embedded database folder (./data)")
    add_remote_arguments(export)
    export.set_defaults(run=cmd_export)

    keys = commands.add_parser("keys", help="API keys: create, list, revoke")
    key_actions = keys.add_subparsers(dest="action", required=True)
    create = key_actions.add_parser("create", help="a new key, printed once")
    create.add_argument("--role", required=True, choices=("ingest", "read", "audit", "admin"))
    create.add_argument("--name", required=True, help="who holds it (recorded as submitter)")
    key_actions.add_parser("list", help="every key: name, role, created, revoked")
    revoke = key_actions.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    keys.add_argument("--data-dir", type=Path, help="embedded database folder (./data)")
    keys.set_defaults(run=cmd_keys)

    stop = commands.add_parser("stop-db", help="stop the embedded PostgreSQL")
    stop.add_argument("--data-dir", type=Path, help="embedded database folder (./data)")
    stop.set_defaults(run=cmd_stop_db)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``frontline`` command."""
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        sys.stderr.write(f"frontline: {error}\n")
        return 1
    configure_logging(settings.log_format, settings.log_level)
    try:
        code: int = args.run(args)
    except SettingsError as error:  # e.g. a signing key file that cannot be read
        sys.stderr.write(f"frontline: {error}\n")
        return 1
    except FrontlineError as error:  # e.g. verify --from 0
        where = f" ({error.field})" if error.field else ""
        sys.stderr.write(f"frontline {args.command}{where}: {error.detail}\n")
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
