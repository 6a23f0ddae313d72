"""Shapes of the audit answers: the signed head, the public key, a verification report."""

from __future__ import annotations

import uuid
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


class LinkFailure(_Output, frozen=True):
    """The first ``event_links`` row that differs from what the payloads state."""

    position: int
    """The position the row claims (for a link the table lacks: the linking event's)."""
    id: uuid.UUID
    """The linking event, as the row (or the payload) names it."""
    target: uuid.UUID
    relation: str
    reason: str


class LinksReport(_Output, frozen=True):
    """Whether ``event_links`` holds exactly the links the payloads state, no more, no less.

    ``GET /v1/events/{id}`` serves a link only when its linking event's payload states it, so
    an extra row is never served; a missing row would hide a link there, and shows here.
    """

    ok: bool
    checked: int
    """Events (positions) whose links were compared: those the chain verified."""
    rows: int
    """Rows of ``event_links`` found as the payloads state them."""
    failure: LinkFailure | None


class ProjectionFailure(_Output, frozen=True):
    """The first projection row that differs from a refold of the log."""

    place: str | None
    """The place whose rows differ (null when the projections as a whole are wrong, such as
    rows made by another policy)."""
    valid_from: datetime | None
    valid_to: datetime | None
    known_from: int | None
    known_to: int | None
    """The row's known range ``[known_from, known_to)`` in commit positions (null: open)."""
    reason: str


class ProjectionsReport(_Output, frozen=True):
    """Whether the stored projection rows (``segments``) equal a refold of the log.

    Every row a place ever had, with its valid and known ranges, is recomputed from the
    place's events up to the position the projections have reached (``position``), commit
    by commit, with the policy the service serves, and compared column by column.
    """

    mode: Literal["full", "sample", "off"]
    """``full``: every place; ``sample``: places picked at random until about
    ``FRONTLINE_VERIFY_SAMPLE`` events, each with a chance in proportion to its events (so
    each row has a chance of about that budget over the log's events); ``off``: not
    checked."""
    ok: bool | None
    """Null when ``off``."""
    policy: str
    """The policy and version the service serves (``credibility-v2@1``)."""
    position: int
    """The log position the projections have reached (the refold reads events up to it)."""
    places: int
    """Places with events up to ``position`` (0 when ``off``)."""
    places_checked: int
    events_checked: int
    rows_checked: int
    """Stored rows compared (all of the places checked)."""
    differing: int
    """Places checked whose rows differ."""
    too_large: int
    """Places with more events than a sample may refold: ``sample`` never picks them
    (``full`` does)."""
    failure: ProjectionFailure | None


class VerifyReport(_Output, frozen=True):
    """What a verification of positions ``from_position``..``to_position`` found.

    ``ok`` is true when the chain verifies, ``event_links`` agrees with the payloads over the
    same positions, and the projections checked (if any) equal a refold of the log.
    ``failure`` is the chain's first bad position; ``links`` and ``projections`` report
    their own.
    """

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
    links: LinksReport
    projections: ProjectionsReport
