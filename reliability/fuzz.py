"""schemathesis against a served Frontline: every check, an admin key, bounded in time.

Starts ``frontline serve --demo`` (the seed article's events, so reads answer with data) on
its own database: the embedded PostgreSQL in a temporary folder, or ``DATABASE_URL``. Makes
an admin key, then runs schemathesis's CLI against ``/schema/openapi.json`` with every check
it has, except ``allow_header_conformance`` (see :data:`EXCLUDED_CHECKS`), and every phase
(examples, coverage, fuzzing, stateful). Prints schemathesis's summary and a line of counts;
exits 1 on any failure.

    python -m reliability.fuzz --max-time 300              # make fuzz: five minutes
    python -m reliability.fuzz --max-examples 10 --max-time 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import asyncpg

from bench.servers import ServerProcess, free_port
from service.store.db import start_embedded, stop_embedded
from service.store.keys import KeyStore

HOST: Final = "127.0.0.1"
FRONTLINE: Final = [sys.executable, "-m", "service.cli"]
SCHEMATHESIS: Final = [sys.executable, "-m", "schemathesis.cli"]
SCHEMA_PATH: Final = "/schema/openapi.json"

#: Checks left out, each with the reason.
EXCLUDED_CHECKS: Final[dict[str, str]] = {}


@dataclass
class FuzzReport:
    """What schemathesis ran and found."""

    returncode: int
    output: str
    operations: int = 0
    test_cases: int = 0
    failures: int = 0
    errors: int = 0

    def line(self) -> str:
        return (
            f"operations tested: {self.operations}, test cases: {self.test_cases}, "
            f"failures: {self.failures}, errors: {self.errors}"
        )


def _count(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    return int(found.group(1)) if found else 0


def _parse(returncode: int, output: str) -> FuzzReport:
    """The counts from schemathesis's summary ("Test cases: N generated, ...")."""
    report = FuzzReport(returncode=returncode, output=output)
    report.operations = _count(r"Tested:\s+(\d+)", output)
    report.test_cases = _count(r"Test cases:\s+(\d+) generated", output)
    report.failures = _count(r"(\d+) unique failures?", output)
    report.errors = _count(r"(\d+) errors?", output)
    return report


async def _admin_key(url: str) -> str:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        _, key = await KeyStore(pool).create(f"fuzz-{uuid.uuid4().hex[:8]}", "admin")
    finally:
        await pool.close()
    return key


def fuzz(
    url: str,
    work: Path,
    *,
    max_time: int,
    max_examples: int | None = None,
    seed: int | None = None,
    include_path_regex: str | None = None,
    phases: str | None = None,
    workers: int = 1,
) -> FuzzReport:
    """Serve the app on ``url`` (migrated here), then run schemathesis against it."""
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([*FRONTLINE, "migrate"], env=env, check=True, capture_output=True)  # noqa: S603
    key = asyncio.run(_admin_key(url))
    port = free_port()
    service = ServerProcess(
        name="service",
        command=[*FRONTLINE, "serve", "--port", str(port), "--demo"],
        env={"DATABASE_URL": url, "FRONTLINE_LOG_FORMAT": "json", "FRONTLINE_LOG_LEVEL": "warning"},
        log_path=work / "service.log",
        port=port,
        ready_path="/ready",
    )
    service.start()
    try:
        command = [
            *SCHEMATHESIS,
            "run",
            f"http://{HOST}:{port}{SCHEMA_PATH}",
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {key}",
            "--max-time",
            str(max_time),
            "--workers",
            str(workers),
            "--request-timeout",
            "10",
            "--output-sanitize",
            "true",
            "--suppress-health-check",
            "too_slow,filter_too_much",
        ]
        if EXCLUDED_CHECKS:
            command += ["--exclude-checks", ",".join(EXCLUDED_CHECKS)]
        if max_examples is not None:
            command += ["--max-examples", str(max_examples)]
        if seed is not None:
            command += ["--seed", str(seed)]
        if include_path_regex is not None:
            command += ["--include-path-regex", include_path_regex]
        if phases is not None:
            command += ["--phases", phases]
        done = subprocess.run(  # noqa: S603 (our own venv's schemathesis)
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"},
            cwd=work,
            check=False,
        )
    finally:
        service.stop()
    return _parse(done.returncode, done.stdout + done.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run it; print schemathesis's output and the counts; exit 1 on any failure."""
    parser = argparse.ArgumentParser(prog="python -m reliability.fuzz")
    parser.add_argument("--max-time", type=int, default=300, help="seconds for the whole run")
    parser.add_argument("--max-examples", type=int, default=None, help="per operation")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--include-path-regex", default=None)
    parser.add_argument("--phases", default=None, help="examples,coverage,fuzzing,stateful")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="frontline-fuzz-"))
    url = os.environ.get("DATABASE_URL")
    embedded = url is None
    try:
        if url is None:
            url = start_embedded(folder / "pg")
        report = fuzz(
            url,
            folder,
            max_time=args.max_time,
            max_examples=args.max_examples,
            seed=args.seed,
            include_path_regex=args.include_path_regex,
            phases=args.phases,
            workers=args.workers,
        )
    finally:
        if embedded:
            stop_embedded(folder / "pg")
    sys.stdout.write(report.output + "\n" + report.line() + "\n")
    sys.stdout.write(json.dumps({"failures": report.failures, "errors": report.errors}) + "\n")
    return 0 if report.returncode == 0 and report.failures == 0 and report.errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
