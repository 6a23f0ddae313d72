"""``POST /v1/imports`` as a ``multipart/form-data`` upload (``curl -F file=@acled.csv``): the
``file`` part is the source file, under the same size limit; a broken upload is a 400
``bad-upload`` problem and stores nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from tests.api.conftest import assert_problem, stored_count

Client = AsyncTestClient[Litestar]
FIXTURE: Final = Path(__file__).resolve().parents[1] / "fixtures" / "interop" / "acled.csv"
URL: Final = "/v1/imports?format=acled"


async def test_an_uploaded_file_imports_as_the_same_file_sent_as_the_body(
    client: Client, owner: asyncpg.Connection
) -> None:
    """Issue 15's finding: ``curl -F file=@x.csv`` failed with "no column event_id_cnty" (the
    multipart envelope was read as the CSV). The ``file`` part is now the file: 201 with the
    counts the bare body gives, and the same file again, as a body, stores nothing new."""
    upload = await client.post(URL, files={"file": ("acled.csv", FIXTURE.read_bytes(), "text/csv")})
    assert upload.status_code == 201, upload.text
    result = upload.json()
    assert (result["accepted"], result["rejected"]) == (11, 2)
    again = await client.post(URL, content=FIXTURE.read_bytes())
    assert again.status_code == 200, again.text
    assert (again.json()["accepted"], again.json()["duplicate"]) == (0, 11)
    assert await stored_count(owner) == 11


async def test_an_uploaded_file_over_the_limit_is_413(settings: Settings, admin_key: str) -> None:
    """The upload's file is held to ``FRONTLINE_MAX_IMPORT`` like a body: 413."""
    app = create_app(settings.with_(max_import_bytes=100))
    async with AsyncTestClient(app=app) as small:
        small.headers["authorization"] = f"Bearer {admin_key}"
        answer = await small.post(URL, files={"file": ("a.csv", FIXTURE.read_bytes(), "text/csv")})
    body = assert_problem(answer, 413)
    assert body["type"].endswith("/body-too-large")


BOUNDARY: Final = "frontline-test-boundary"
CONTENT_TYPE: Final = f"multipart/form-data; boundary={BOUNDARY}"


def _part(name: str, content: bytes, filename: str | None = "a.csv") -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return (
        (
            f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\nContent-Type: text/csv\r\n\r\n"
        ).encode()
        + content
        + b"\r\n"
    )


END: Final = f"--{BOUNDARY}--\r\n".encode()
CSV: Final = FIXTURE.read_bytes()
BAD: Final = [
    ("another name", CONTENT_TYPE, _part("upload", CSV) + END, "file"),
    ("two parts", CONTENT_TYPE, _part("file", CSV) + _part("file", CSV) + END, "file"),
    ("a field before the file", CONTENT_TYPE, _part("format", b"acled", None) + END, "file"),
    ("no part", CONTENT_TYPE, END, "file"),
    ("cut short", CONTENT_TYPE, _part("file", CSV)[:-40], "body"),
    ("not multipart at all", CONTENT_TYPE, CSV, "body"),
    ("no boundary", "multipart/form-data", _part("file", CSV) + END, "content-type"),
]


@pytest.mark.parametrize(("why", "content_type", "body", "field"), BAD, ids=[b[0] for b in BAD])
async def test_a_broken_upload_is_400_and_stores_nothing(
    client: Client,
    owner: asyncpg.Connection,
    why: str,
    content_type: str,
    body: bytes,
    field: str,
) -> None:
    """An upload without exactly one part named ``file``, cut short, not multipart, or
    without a boundary: 400 ``bad-upload`` naming what is wrong; nothing is stored."""
    answer = await client.post(URL, content=body, headers={"content-type": content_type})
    problem = assert_problem(answer, 400, field)
    assert problem["type"].endswith("/bad-upload"), why
    assert await stored_count(owner) == 0


async def test_the_file_part_without_a_filename_is_the_file(client: Client) -> None:
    """``curl -F 'file=<acled.csv'`` sends the file as a plain field (no filename): it is the
    file all the same."""
    body = _part("file", CSV, None) + END
    answer = await client.post(URL, content=body, headers={"content-type": CONTENT_TYPE})
    assert answer.status_code == 201, answer.text
    assert answer.json()["accepted"] == 11


async def test_the_document_states_the_one_part(client: Client) -> None:
    """Schemathesis's finding: the document allowed other parts beside ``file`` (any
    properties), which the service refuses. The upload's schema is one property, ``file``,
    required, and no other."""
    document = (await client.get("/schema/openapi.json")).json()
    body = document["paths"]["/v1/imports"]["post"]["requestBody"]["content"]
    schema = body["multipart/form-data"]["schema"]
    assert schema["required"] == ["file"]
    assert set(schema["properties"]) == {"file"}
    assert schema["additionalProperties"] is False
