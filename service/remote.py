"""The command line against a remote Frontline server: ``frontline import``, ``export`` and
``verify`` with ``--url`` (or ``FRONTLINE_URL``) go through :mod:`frontline.client` instead
of opening the database, with the API key ``--key`` (or ``FRONTLINE_KEY``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

import msgspec

from contracts.audit import SignedHead, VerifyFailure, VerifyReport
from contracts.responses import ImportResult
from frontline.client import Client, FrontlineClientError, NotFound, ProblemError
from service.domain.audit import Head, public_from_base64, signature_valid

URL_ENV = "FRONTLINE_URL"
KEY_ENV = "FRONTLINE_KEY"


def add_remote_arguments(parser: argparse.ArgumentParser) -> None:
    """``--url`` and ``--key`` on a command that can run against a remote server."""
    parser.add_argument(
        "--url",
        default=os.environ.get(URL_ENV) or None,
        help=f"a Frontline server to use instead of the database (${URL_ENV}), "
        "e.g. http://127.0.0.1:8000",
    )
    parser.add_argument(
        "--key",
        default=os.environ.get(KEY_ENV) or None,
        help=f"the API key for --url (${KEY_ENV}; better than --key, which other users of "
        "this machine may see in the process list)",
    )


def _run(command: str, args: argparse.Namespace, work: Callable[[Client], int]) -> int:
    """``work`` with a client for ``--url``; a problem or a transport failure is one line
    on stderr and exit 1."""
    try:
        with Client(args.url, args.key) as client:
            return work(client)
    except ProblemError as error:
        where = f" ({error.field})" if error.field else ""
        sys.stderr.write(f"frontline {command}{where}: {error.status} {error.detail}\n")
        return 1
    except FrontlineClientError as error:
        sys.stderr.write(f"frontline {command}: {args.url}: {error}\n")
        return 1


def import_remote(args: argparse.Namespace, report: Callable[[ImportResult], int]) -> int:
    """``frontline import --url``: an NDJSON file in chunks (ids derived where lines have
    none, so an interrupted run can be run again with the same ``--idempotency-key``), or a
    source file through ``POST /v1/imports``."""
    path = Path(args.file)

    def work(client: Client) -> int:
        if args.format in (None, "ndjson"):
            result = client.import_events(path, idempotency_key=args.idempotency_key)
        else:
            result = client.import_file(path, args.format)
        return report(result)

    return _run("import", args, work)


def export_remote(args: argparse.Namespace) -> int:
    """``frontline export --url``: the log (or ``--front``, the front's CSV) as the server
    exports it, the same bytes as the local command."""

    def work(client: Client) -> int:
        out: IO[bytes] | Path = sys.stdout.buffer if args.out in (None, "-") else Path(args.out)
        if args.front:
            done = client.export_front(out, valid_at=args.valid_at, known_at=args.known_at)
            sys.stderr.write(f"front: ETag {done.etag}\n")
            return 0
        done = client.export(out, known_at=args.known_at, format=args.format)
        sys.stderr.write(f"log up to position {done.position}: ETag {done.etag}\n")
        return 0

    return _run("export", args, work)


def verify_remote(args: argparse.Namespace, saved: SignedHead | None) -> int:
    """``frontline verify --url``: the server's verification (with a saved head: whether the
    log still holds it; a signed saved head is checked against the server's public key)."""

    def work(client: Client) -> int:
        report = client.verify(
            from_=args.from_, to=args.to, head=saved, projections=args.projections
        )
        problem = None if saved is None else _signature_problem(client, saved)
        if problem is not None and saved is not None:
            report = _broken(report, saved.position, problem)
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(report)).decode() + "\n")
        return 0 if report.ok else 1

    return _run("verify", args, work)


def _signature_problem(client: Client, saved: SignedHead) -> str | None:
    """Why a signed saved head's signature does not hold under the server's key, or None."""
    if saved.signature is None:
        return None
    try:
        key = client.public_key()
    except NotFound:
        return "the saved head is signed, but the server has no key to check it"
    if saved.key_id is not None and saved.key_id != key.key_id:
        return f"the saved head was signed by key {saved.key_id}, the server's is {key.key_id}"
    head = Head(position=saved.position, hash=saved.hash.lower(), recorded_at=saved.recorded_at)
    if not signature_valid(public_from_base64(key.public_key), head, saved.signature):
        return "the saved head's signature is not valid: the head was forged or altered"
    return None


def _broken(report: VerifyReport, position: int, reason: str) -> VerifyReport:
    failure = report.failure
    if failure is None or failure.position >= position:
        failure = VerifyFailure(position=position, reason=reason)
    return msgspec.structs.replace(report, ok=False, failure=failure, saved_head="broken")
