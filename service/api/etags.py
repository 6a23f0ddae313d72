"""ETags of reproducible answers, and ``If-None-Match``: the same question, the same tag.

The log up to a commit position P is fixed by P's chain hash (each hash covers every record
before it), so an export's ETag is derived from (format, P, hash at P) without reading it.
The front as CSV is buffered and its ETag is the SHA-256 of its bytes.
"""

from __future__ import annotations

import hashlib

from service.usecases.export import EXPORT_VERSION


def log_etag(fmt: str, position: int, chain_hash: bytes) -> str:
    """The ETag of the log exported up to ``position`` in ``fmt`` (quoted, strong)."""
    seed = f"{EXPORT_VERSION}\n{fmt}\n{position}\n{chain_hash.hex()}".encode()
    return f'"{hashlib.sha256(seed).hexdigest()}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (RFC 9110: ``*`` or a list of tags,
    compared weakly)."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    ours = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == ours for tag in if_none_match.split(","))


def content_etag(body: bytes) -> str:
    """A strong ETag from the bytes themselves."""
    return f'"{hashlib.sha256(body).hexdigest()}"'
