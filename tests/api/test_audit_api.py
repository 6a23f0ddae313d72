"""The audit over HTTP: the head (signed or not), the public key, verification and its 422s."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.domain.audit import Head, SigningKey, signature_valid
from service.settings import Settings, SettingsError
from tests.api.conftest import assert_problem
from tests.payloads import at_place, event_json

Client = AsyncTestClient[Litestar]


async def post_events(client: Client, count: int) -> None:
    for _ in range(count):
        response = await client.post("/v1/events", json=event_json())
        assert response.status_code == 201, response.text


@pytest.fixture
async def signed_client(
    admin_key: str, settings: Settings, tmp_path: Path
) -> AsyncIterator[Client]:
    """The app with a head-signing key."""
    key_file = tmp_path / "head.pem"
    key_file.write_bytes(SigningKey.generate().pem())
    app = create_app(settings.with_(signing_key_file=str(key_file)))
    async with AsyncTestClient(app=app) as client:
        client.headers["authorization"] = f"Bearer {admin_key}"
        yield client


async def test_an_unsigned_head_and_no_key(client: Client) -> None:
    """Without a signing key the head has position, 64-hex hash and time but no signature,
    algorithm or key id, and /v1/audit/key is 404."""
    await post_events(client, 3)
    head = (await client.get("/v1/audit/head")).json()
    assert head["position"] == 3
    assert len(head["hash"]) == 64
    assert head["recorded_at"] is not None
    assert head["signature"] is None
    assert head["algorithm"] is None
    assert head["key_id"] is None
    assert_problem(await client.get("/v1/audit/key"), 404)


async def test_a_signed_head_verifies_with_the_published_key(signed_client: Client) -> None:
    """The published Ed25519 key (PEM and raw) checks the head's signature over position, hash
    and time, and fails it once the time is left out."""
    await post_events(signed_client, 2)
    head = (await signed_client.get("/v1/audit/head")).json()
    key = (await signed_client.get("/v1/audit/key")).json()
    assert key["algorithm"] == "Ed25519"
    assert head["key_id"] == key["key_id"]
    assert key["pem"].startswith("-----BEGIN PUBLIC KEY-----")
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
    checked = Head(position=head["position"], hash=head["hash"], recorded_at=None)
    assert not signature_valid(public, checked, head["signature"])  # the time is signed too
    answer = await signed_client.get("/v1/audit/verify")
    signed = answer.json()["head"]
    moment = datetime.fromisoformat(signed["recorded_at"].replace("Z", "+00:00"))
    good = Head(position=signed["position"], hash=signed["hash"], recorded_at=moment)
    assert signature_valid(public, good, signed["signature"])


async def test_verify_answers_ok_and_holds_a_saved_head(client: Client) -> None:
    """Verify reports the whole log ok, a saved head that still holds after more appends, a
    saved head with a wrong hash as broken at its position, and a sub-range checked alone."""
    await post_events(client, 4)
    head = (await client.get("/v1/audit/head")).json()
    report = (await client.get("/v1/audit/verify")).json()
    assert report["ok"] is True
    assert report["failure"] is None
    assert (report["from_position"], report["to_position"], report["checked"]) == (1, 4, 4)
    assert report["saved_head"] == "not given"
    await post_events(client, 1)
    later = await client.get(
        "/v1/audit/verify", params={"head_position": head["position"], "head_hash": head["hash"]}
    )
    assert later.json()["saved_head"] == "holds"
    assert later.json()["ok"] is True
    wrong = await client.get(
        "/v1/audit/verify", params={"head_position": head["position"], "head_hash": "ab" * 32}
    )
    assert wrong.json()["ok"] is False
    assert wrong.json()["saved_head"] == "broken"
    assert wrong.json()["failure"]["position"] == head["position"]
    part = (await client.get("/v1/audit/verify", params={"from": 2, "to": 3})).json()
    assert part["ok"]
    assert part["checked"] == 2


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": 0}, "from"),
        ({"from": "x"}, "from"),
        ({"to": -1}, "to"),
        ({"from": 5, "to": 2}, "from"),
        ({"head_position": 1}, "head_hash"),
        ({"head_hash": "00" * 32}, "head_position"),
        ({"head_position": 1, "head_hash": "zz" * 32}, "head_hash"),
        ({"head_position": 1, "head_hash": "00"}, "head_hash"),
        ({"to": 10**20}, "to"),
        ({"from": 10**20}, "from"),
        ({"head_position": 10**20, "head_hash": "00" * 32}, "head_position"),
        ({"to": 99}, "to"),  # past the head
        ({"projections": "some"}, "projections"),
        ({"projections": "FULL"}, "projections"),
    ],
)
async def test_bad_verify_parameters_are_422_naming_them(
    client: Client, params: dict[str, str | int], field: str
) -> None:
    """Each bad verify parameter (out of range, not a number, past the head, half a saved head,
    a bad hash, an unknown projections mode) is a 422 naming it."""
    assert_problem(await client.get("/v1/audit/verify", params=params), 422, field)


def test_an_unreadable_or_wrong_key_file_stops_the_app_before_it_serves(
    settings: Settings, tmp_path: Path
) -> None:
    """A missing or unparsable signing key file makes create_app raise a SettingsError naming
    the problem and FRONTLINE_SIGNING_KEY_FILE, before anything is served."""
    with pytest.raises(SettingsError, match="cannot read"):
        create_app(settings.with_(signing_key_file=str(tmp_path / "missing.pem")))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(SettingsError, match="FRONTLINE_SIGNING_KEY_FILE"):
        create_app(settings.with_(signing_key_file=str(junk)))


async def test_verify_names_a_forged_link_and_an_edited_projection_row(
    client: Client, owner: asyncpg.Connection
) -> None:
    """Issue 13's two findings, as the owner of the tables: a forged event_links row (event
    2 "retracts" event 1) and a segments body edited to controller `mallory-side` both
    passed verify while the service served them. Now verify answers ok=false naming the
    link row and the projection row, and GET /v1/events/{id} never serves the forged link."""
    first, second = event_json(), at_place("sy-raqqa")
    for body in (first, second):
        assert (await client.post("/v1/events", json=body)).status_code == 201
    assert (await client.get("/v1/audit/verify")).json()["ok"] is True
    await owner.execute(
        "INSERT INTO event_links (position, id, target, relation) VALUES (2, $1, $2, 'retracts')",
        uuid.UUID(second["id"]),
        uuid.UUID(first["id"]),
    )
    forged = (await client.get("/v1/audit/verify")).json()
    assert forged["ok"] is False
    assert forged["failure"] is None  # the chain itself holds
    assert forged["links"]["ok"] is False
    assert forged["links"]["failure"]["position"] == 2
    assert forged["links"]["failure"]["relation"] == "retracts"
    detail = (await client.get(f"/v1/events/{first['id']}")).json()
    assert detail["linked_from"] == []
    await owner.execute(
        'UPDATE segments SET body = replace(body, \'"controller":"syrian-government"\', '
        "'\"controller\":\"mallory-side\"') WHERE place_id = 'sy-maskanah' AND known_to IS NULL"
    )
    assert (await client.get("/v1/places/sy-maskanah")).status_code == 200
    edited = (await client.get("/v1/audit/verify", params={"projections": "full"})).json()
    assert edited["ok"] is False
    projections = edited["projections"]
    assert (projections["mode"], projections["ok"], projections["differing"]) == ("full", False, 1)
    failure = projections["failure"]
    assert failure["place"] == "sy-maskanah"
    assert failure["valid_from"] == "2017-06-03T00:00:00Z"
    assert failure["known_from"] == 1
    assert failure["known_to"] is None
    assert "body.controller" in failure["reason"]
    assert "mallory-side" in failure["reason"]
    sampled = (await client.get("/v1/audit/verify")).json()["projections"]
    assert (sampled["mode"], sampled["ok"]) == ("sample", False)


async def test_verify_without_projections_says_so(client: Client) -> None:
    """`projections=off` checks the chain and the links only; the answer says the
    projections were not looked at (ok null), and `ok` stands for what was checked."""
    await post_events(client, 2)
    report = (await client.get("/v1/audit/verify", params={"projections": "off"})).json()
    assert report["ok"] is True
    assert report["links"] == {"ok": True, "checked": 2, "rows": 0, "failure": None}
    assert report["projections"]["mode"] == "off"
    assert report["projections"]["ok"] is None
    assert report["projections"]["places_checked"] == 0
