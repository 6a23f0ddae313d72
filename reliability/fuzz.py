"""schemathesis against a served Frontline: every check, an admin key, bounded in time.

Starts ``frontline serve --demo`` (the seed article's events, so reads answer with data) on
its own database: the embedded PostgreSQL in a temporary folder, or ``DATABASE_URL``. Makes
an admin key, then runs schemathesis's CLI against ``/schema/openapi.json`` with every check
it has, except ``allow_header_conformance`` (see :data:`EXCLUDED_CHECKS`), and every phase
(examples, coverage, fuzzing, stateful), one after the other, each with its share of the time
budget. Prints schemathesis's output and the counts of each phase; exits 1 on any failure.

    python -m reliability.fuzz --max-time 600              # make fuzz: ten minutes
    python -m reliability.fuzz --phases fuzzing --max-examples 5 --max-time 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import asyncpg

from bench.servers import FRONTLINE, ServerProcess, check_database, free_port
from service.store.keys import KeyStore

HOST: Final = "127.0.0.1"
SCHEMATHESIS: Final = [sys.executable, "-m", "schemathesis.cli"]
SCHEMA_PATH: Final = "/schema/openapi.json"

CONFIG: Final = Path(__file__).with_name("schemathesis.toml")
"""Where positive_data_acceptance also takes a 422, and why (rules OpenAPI cannot state)."""

#: Checks left out, each with the reason.
EXCLUDED_CHECKS: Final[dict[str, str]] = {
    "allow_header_conformance": (
        "Litestar 2.25's OPTIONS answer lists only the first declared of two handlers on the "
        "same path (`Allow: OPTIONS, POST` for /v1/events, which also has GET); a bare "
        "Litestar app does the same (tests/api/test_openapi_document.py)"
    ),
}


@dataclass
class FuzzReport:
    """What schemathesis ran and found."""

    returncode: int
    output: str
    operations: int = 0
    selected: int = 0
    """Operations of the document the run selected (all but the excluded paths)."""
    test_cases: int = 0
    failures: int = 0
    errors: int = 0
    phase_lines: list[str] = field(default_factory=list)

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
    report.selected = _count(r"Selected:\s+(\d+)/", output)
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


def _schemathesis(
    base: str,
    key: str,
    work: Path,
    *,
    phase: str,
    max_time: int,
    max_examples: int | None,
    seed: int | None,
    include_path_regex: str | None,
    exclude_paths: Sequence[str],
    workers: int,
) -> FuzzReport:
    command = [
        *SCHEMATHESIS,
        "--config-file",
        str(CONFIG),
        "run",
        f"{base}{SCHEMA_PATH}",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {key}",
        "--phases",
        phase,
        "--max-time",
        str(max_time),
        "--workers",
        str(workers),
        "--request-timeout",
        "15",
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
    for path in exclude_paths:
        command += ["--exclude-path", path]
    done = subprocess.run(  # noqa: S603 (our own venv's schemathesis)
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"},
        cwd=work,
        check=False,
    )
    return _parse(done.returncode, done.stdout + done.stderr)


PHASES: Final = ("examples", "coverage", "fuzzing", "stateful")


def fuzz(
    url: str,
    work: Path,
    *,
    max_time: int,
    phases: Sequence[str] = PHASES,
    max_examples: int | None = None,
    seed: int | None = None,
    include_path_regex: str | None = None,
    exclude_paths: Sequence[str] = (),
    workers: int = 1,
) -> FuzzReport:
    """Serve the app on ``url`` (migrated here), then run schemathesis against it, one phase
    at a time, each with an equal share of ``max_time`` (the coverage phase alone would
    otherwise spend all of it on the many boundary values of the date patterns)."""
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
    total = FuzzReport(returncode=0, output="")
    try:
        for phase in phases:
            report = _schemathesis(
                f"http://{HOST}:{port}",
                key,
                work,
                phase=phase,
                max_time=max(1, max_time // len(phases)),
                max_examples=max_examples,
                seed=seed,
                include_path_regex=include_path_regex,
                exclude_paths=exclude_paths,
                workers=workers,
            )
            total.returncode = max(total.returncode, report.returncode)
            total.output += f"--- phase: {phase} ---\n{report.output}\n"
            total.phase_lines.append(f"{phase}: {report.line()}")
            total.operations = max(total.operations, report.operations)
            total.selected = max(total.selected, report.selected)
            total.test_cases += report.test_cases
            total.failures += report.failures
            total.errors += report.errors
    finally:
        service.stop()
    return total


def main(argv: Sequence[str] | None = None) -> int:
    """Run it; print schemathesis's output and the counts; exit 1 on any failure."""
    parser = argparse.ArgumentParser(prog="python -m reliability.fuzz")
    parser.add_argument("--max-time", type=int, default=300, help="seconds for the whole run")
    parser.add_argument("--max-examples", type=int, default=None, help="per operation")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--include-path-regex", default=None)
    parser.add_argument(
        "--exclude-path", action="append", default=[], help="a path to leave out (repeatable)"
    )
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    # fuzz() migrates the database itself.
    with check_database("frontline-fuzz-", migrate=False) as (url, folder):
        report = fuzz(
            url,
            folder,
            max_time=args.max_time,
            max_examples=args.max_examples,
            seed=args.seed,
            include_path_regex=args.include_path_regex,
            exclude_paths=args.exclude_path,
            phases=args.phases.split(","),
            workers=args.workers,
        )
    lines = [*report.phase_lines, f"total: {report.line()}"]
    sys.stdout.write(report.output + "\n" + "\n".join(lines) + "\n")
    sys.stdout.write(json.dumps({"failures": report.failures, "errors": report.errors}) + "\n")
    return 0 if report.returncode == 0 and report.failures == 0 and report.errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
