"""The service on a PostgreSQL that looks like a managed one: no superuser anywhere (the
schema's owner may only create roles), and TLS required on every connection (``hostssl``
alone in ``pg_hba.conf``), asked for with ``sslmode`` in the URLs."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from reliability.crash_postgres import Postgres, find_postgres
from tests.reliability.test_workers import admin_key, client, command, event, served

OWNER = "frontline_owner"
LOGIN = "frontline_api"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PostgreSQL reads them."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def work() -> Iterator[Path]:
    """A folder for the server's data, reachable by the user the server runs as (as root,
    ``postgres``, who cannot enter pytest's tmp_path)."""
    folder = Path(tempfile.mkdtemp(prefix="frontline-tls-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


async def test_the_service_runs_on_a_tls_only_server_without_a_superuser(
    work: Path, tmp_path: Path
) -> None:
    """On a server that accepts TLS connections only, with a schema owner that is no
    superuser (CREATEROLE alone) and a NOINHERIT login: ``frontline migrate`` and ``frontline
    serve --workers 2`` with ``sslmode=require`` in their URLs append, read and verify; every
    connection of the service is encrypted; the same URL with ``sslmode=disable`` is
    refused."""
    pg = Postgres(find_postgres(), work / "pg")
    pg.init()
    cert, key = self_signed(pg.data)
    user = pg._user()
    for path in (cert, key):
        path.chmod(0o600)
        if user is not None:
            shutil.chown(path, user)
    (pg.data / "pg_hba.conf").write_text(
        "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n"
    )
    pg.options = ("-c", "ssl=on", "-c", f"ssl_cert_file={cert}", "-c", f"ssl_key_file={key}")
    pg.start()
    try:
        root = await asyncpg.connect(pg.url("postgres"), ssl="require")
        try:
            await root.execute(f"CREATE ROLE {OWNER} LOGIN CREATEROLE")
            await root.execute(f"CREATE DATABASE frontline OWNER {OWNER}")
        finally:
            await root.close()
        base = f"postgresql://{{}}@127.0.0.1:{pg.port}/frontline"
        owner_url = base.format(OWNER) + "?sslmode=require"
        owner = await asyncpg.connect(owner_url)
        try:
            assert not await owner.fetchval(
                "SELECT rolsuper FROM pg_roles WHERE rolname = $1", OWNER
            )
            # The roles, made first by the owner, as docs/deployment.md says.
            await owner.execute("CREATE ROLE frontline_app NOLOGIN")
            await owner.execute(f"CREATE ROLE {LOGIN} LOGIN NOINHERIT IN ROLE frontline_app")
        finally:
            await owner.close()
        env = {
            "DATABASE_URL": base.format(LOGIN) + "?sslmode=require",
            "FRONTLINE_MIGRATE_DATABASE_URL": owner_url,
            "FRONTLINE_LOG_FORMAT": "json",
        }
        migrated = await asyncio.to_thread(command, env, "migrate")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        key_value = await admin_key(owner_url)
        with served(env, tmp_path / "service.log", "--workers", "2") as server:
            async with client(server, key_value) as http:
                posted = [event(n) for n in range(8)]
                answers = await asyncio.gather(*(http.post("/v1/events", json=b) for b in posted))
                assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
                page = await http.get("/v1/events", params={"limit": 50})
                assert [e["position"] for e in page.json()["events"]] == list(range(1, 9))
                verified = await http.get("/v1/audit/verify")
                assert verified.json()["ok"] is True, verified.text
            # The provider's view (its superuser): every session of the service.
            owner = await asyncpg.connect(pg.url("postgres"), ssl="require")
            try:
                encrypted = await owner.fetch(
                    "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)"
                    " WHERE a.usename = $1",
                    LOGIN,
                )
            finally:
                await owner.close()
            assert encrypted
            assert all(r["ssl"] for r in encrypted)
        refused = await asyncio.to_thread(
            command, {**env, "DATABASE_URL": base.format(LOGIN) + "?sslmode=disable"}, "verify"
        )
        assert refused.returncode != 0
        assert "no encryption" in refused.stdout + refused.stderr
    finally:
        pg.stop()
