"""Shapes of the audit answers: the signed head, the public key, a verification report."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from msgspec import Struct


class _Output(Struct, frozen=True, kw_only=True):
    """Base of every answer struct."""


class SignedHead(_Output, frozen=True):
    """The log's latest position and chain hash, signed when the service has a key.

    The signature (Ed25519, base64) covers the bytes ``frontline-head-v1\\n`` followed by the
    RFC 8785 JSON of ``{"hash", "position", "recorded_at"}`` (``recorded_at`` as
    ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, or null before the first event). Save it: a later
    ``GET /v1/audit/verify`` with ``head_position`` and ``head_hash`` (or ``frontline verify
    --head FILE``) proves the log still holds it.
    """

    position: int
    hash: str
    """Hex SHA-256 chain hash at ``position`` (64 zeros before the first event)."""
    recorded_at: datetime | None
    """When the commit ending at ``position`` was recorded."""
    algorithm: Literal["Ed25519"] | None
    signature: str | None
    """Base64 Ed25519 signature; null when no signing key is configured."""
    key_id: str | None
    """The first 16 hex digits of the SHA-256 of the public key that signed."""


class PublicKey(_Output, frozen=True):
    """The key that signs heads."""

    algorithm: Literal["Ed25519"]
    key_id: str
    public_key: str
    """The 32 raw bytes of the public key, base64."""
    pem: str
    """The same key as a SubjectPublicKeyInfo PEM."""


class VerifyFailure(_Output, frozen=True):
    """The first position that does not verify."""

    position: int
    reason: str


class VerifyReport(_Output, frozen=True):
    """What a verification of positions ``from_position``..``to_position`` found."""

    ok: bool
    from_position: int
    to_position: int
    checked: int
    """Rows whose digest, record, columns and hash were recomputed and found right."""
    head: SignedHead
    """The head the log shows now (signed when the service has a key)."""
    failure: VerifyFailure | None
    saved_head: Literal["holds", "broken", "not given"]
    """Whether the log still holds the saved head given as ``head_position``/``head_hash``."""
