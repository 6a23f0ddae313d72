"""Tamper evidence: recompute the hash chain over stored rows, check what is derived from the
log against it (links, projections), sign and check the log's head.

Pure: rows come in as mappings (the columns of ``events``), keys as bytes. Each stored event
holds its client payload, the payload's SHA-256, a canonical *record* of the server's fields
(RFC 8785 JSON), ``prev_hash`` and ``hash = SHA-256(prev_hash || record)`` (DESIGN section 6).
:class:`ChainVerifier` checks, row by row in position order, that

1. no position is missing;
2. the payload matches its digest;
3. the columns derived from the payload (id, type, place, source key, valid interval) agree
   with it;
4. the record matches the row's columns, and the hash matches the record;
5. ``prev_hash`` is the previous row's hash.

The first row that fails is named with the reason; an edit anywhere changes a digest, a
record or a hash, so the verifier finds it. Deleting the newest rows (and moving the head
back) leaves a shorter chain that verifies: only a head saved before, signed by the service,
proves the truncation (:func:`check_saved_head`).

What the service derives from the log is checked against the payloads the chain vouches for:
:class:`LinkVerifier` compares ``event_links`` with each payload's ``relates_to`` (every link
present, no other row), and :func:`compare_place` compares a place's stored projection rows
with a refold of its events (:func:`~service.domain.bitemporal.history`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contracts.events import Occurred, event_decoder, registry_decoder
from service.domain.bitemporal import HistoryRow, history, stream_commits
from service.domain.errors import InvalidEvent
from service.domain.policy import Policy
from service.domain.records import (
    RECORD_VERSION,
    REGISTRY_VALID_FROM,
    REGISTRY_VALID_TO,
    registry_columns,
    source_key,
)
from service.domain.registry import RegistryHistory
from service.domain.time import utc_text, valid_interval

GENESIS_HASH: Final = bytes(32)
"""``prev_hash`` of position 1 (the head before any event)."""
HEAD_CONTEXT: Final = b"frontline-head-v1\n"
"""Prefix of every signed head message, so the key signs nothing else by accident."""

_encode_sorted = msgspec.json.Encoder(order="sorted").encode


class _PlaceRef(msgspec.Struct, frozen=True):
    id: str


class _SourceRef(msgspec.Struct, frozen=True):
    name: str


class _LinkRef(msgspec.Struct, frozen=True):
    event: uuid.UUID
    relation: str


class _PayloadFacts(msgspec.Struct, frozen=True):
    """The fields of a payload the row's columns repeat, and its links (the rest is skipped
    unread)."""

    id: uuid.UUID
    type: str
    place: _PlaceRef
    occurred: Occurred
    source: _SourceRef
    relates_to: tuple[_LinkRef, ...] = ()


class _PayloadLinks(msgspec.Struct, frozen=True):
    relates_to: tuple[_LinkRef, ...] = ()


_facts = msgspec.json.Decoder(_PayloadFacts)
_links = msgspec.json.Decoder(_PayloadLinks)

Link = tuple[uuid.UUID, str]
"""A link as a payload states it: (the event it names, the relation)."""


def stated_links(payload: str | bytes) -> frozenset[Link]:
    """The links a stored payload states (its ``relates_to``), as (event, relation) pairs."""
    return frozenset((link.event, link.relation) for link in _links.decode(payload).relates_to)


_record = msgspec.json.Decoder(dict[str, Any])


class Row(Protocol):
    """A stored event's columns, by name (an asyncpg record, or a dict in tests)."""

    def __getitem__(self, key: str, /) -> Any: ...


@dataclass(frozen=True, slots=True)
class Failure:
    """The first position that does not verify, and why."""

    position: int
    reason: str


class ChainVerifier:
    """Checks rows in position order from ``start``, chaining from ``prev_hash``."""

    def __init__(self, start: int, prev_hash: bytes) -> None:
        self.expected = start
        self.last_hash = prev_hash
        self.checked = 0
        self.stated: tuple[Link, ...] = ()
        """The links the last row that verified states in its payload."""

    def check(self, row: Row) -> Failure | None:
        """Check the next row; None when it verifies (then it becomes the chain's end)."""
        position: int = row["position"]
        if position != self.expected:
            return Failure(
                self.expected,
                f"position {self.expected} is missing: the next stored position is {position}",
            )
        failure = _check_row(row, self.last_hash)
        if isinstance(failure, Failure):
            return failure
        self.stated = failure
        self.last_hash = row["hash"]
        self.expected += 1
        self.checked += 1
        return None


def _check_row(row: Row, prev_hash: bytes) -> Failure | tuple[Link, ...]:
    """The row's failure, or the links its (verified) payload states."""
    position: int = row["position"]
    payload = row["payload"].encode()
    digest = row["payload_digest"]
    if _sha256(payload).digest() != digest:
        return Failure(
            position,
            "the payload does not match its SHA-256 digest: the event's content was altered",
        )
    stored_record = row["record"].encode()
    stored_prev = row["prev_hash"]
    stored_hash = row["hash"]
    if _sha256(prev_hash + stored_record).digest() != stored_hash:
        if stored_prev == prev_hash:
            return Failure(
                position, "the hash does not match the record: the record or the hash was altered"
            )
        if _sha256(stored_prev + stored_record).digest() == stored_hash and position > 1:
            # This row is whole and chained to a hash the previous row no longer has.
            return Failure(
                position - 1,
                f"position {position - 1} was rewritten: its hash is not the one position "
                f"{position} was chained to",
            )
        return Failure(position, "prev_hash is not the hash of the previous position")
    if stored_prev != prev_hash:
        return Failure(position, "prev_hash is not the hash of the previous position")
    # The record is intact: now the columns must say what it says.
    expected = _encode_sorted(
        {
            "commit_position": row["commit_position"],
            "id": str(row["id"]),
            "payload_sha256": digest.hex(),
            "place": row["place_id"],
            "place_version": row["place_version"],
            "position": row["position"],
            "recorded_at": _utc_text(row["recorded_at"]),
            "submitter": row["submitter"],
            "type": row["type"],
            "v": RECORD_VERSION,
        }
    )
    if expected != stored_record:
        reason = f"column {_differing(expected, stored_record)} disagrees with the record"
        return Failure(position, reason)
    if ":" in row["place_id"]:
        return _check_registry_row(row, payload)
    try:
        facts = _facts.decode(payload)
        valid_from, valid_to = valid_interval(facts.occurred)
    except (msgspec.DecodeError, ValueError, InvalidEvent) as error:
        return Failure(position, f"the payload is not a valid event: {error}")
    # The columns the record does not hold, against the payload the digest vouches for.
    if facts.id != row["id"]:
        return Failure(position, "column id disagrees with the payload")
    if facts.type != row["type"]:
        return Failure(position, "column type disagrees with the payload")
    if facts.place.id != row["place_id"]:
        return Failure(position, "column place_id disagrees with the payload")
    if _source_key(facts.source.name) != row["source_key"]:
        return Failure(position, "column source_key disagrees with the payload")
    if valid_from != row["valid_from"]:
        return Failure(position, "column valid_from disagrees with the payload")
    if valid_to != row["valid_to"]:
        return Failure(position, "column valid_to disagrees with the payload")
    return tuple((link.event, link.relation) for link in facts.relates_to)


def _check_registry_row(row: Row, payload: bytes) -> Failure | tuple[Link, ...]:
    """A registry event's row (a stream ``side:``, ``source:`` or ``place:``): the columns
    the record does not hold, against its payload. It states no links."""
    position: int = row["position"]
    try:
        event = registry_decoder.decode(payload)
    except msgspec.DecodeError as error:
        return Failure(position, f"the payload is not a valid registry event: {error}")
    stream, key = registry_columns(event)
    if event.id != row["id"]:
        return Failure(position, "column id disagrees with the payload")
    if str(type(event).__struct_config__.tag) != row["type"]:
        return Failure(position, "column type disagrees with the payload")
    if stream != row["place_id"]:
        return Failure(position, "column place_id disagrees with the payload")
    if key != row["source_key"]:
        return Failure(position, "column source_key disagrees with the payload")
    if (row["valid_from"], row["valid_to"]) != (REGISTRY_VALID_FROM, REGISTRY_VALID_TO):
        return Failure(position, "columns valid_from and valid_to are not a registry event's")
    return ()


_sha256 = hashlib.sha256
_utc_text = functools.lru_cache(maxsize=4096)(utc_text)
"""Many rows share a commit's time."""
_source_key = functools.lru_cache(maxsize=4096)(source_key)


def _differing(expected: bytes, stored: bytes) -> str:
    """The first field of a record that differs, named by its column."""
    ours, theirs = _record.decode(expected), _record.decode(stored)
    columns = {"place": "place_id", "payload_sha256": "payload_digest"}
    for key in sorted(set(ours) | set(theirs)):
        if ours.get(key) != theirs.get(key):
            return columns.get(key, key)
    return "(none: the same fields, other bytes)"


# --------------------------------------------------------------------------------------------
# Links: event_links against the payloads


@dataclass(frozen=True, slots=True)
class LinkRow:
    """One row of ``event_links``."""

    position: int
    id: uuid.UUID
    target: uuid.UUID
    relation: str


@dataclass(frozen=True, slots=True)
class LinkMismatch:
    """The first link row that differs from the payloads, and why."""

    position: int
    id: uuid.UUID
    target: uuid.UUID
    relation: str
    reason: str


class LinkVerifier:
    """Compares ``event_links`` with the links the payloads state, one position at a time.

    The append path writes one row per link of a payload (``relates_to`` is a set); the
    table is an index for "which events link to this one". A forged row would make an event
    look retracted, denied or confirmed by another; a deleted one would hide a link.
    """

    def __init__(self) -> None:
        self.checked = 0
        self.rows = 0

    def check(
        self, position: int, event_id: uuid.UUID, stated: Sequence[Link], rows: Sequence[LinkRow]
    ) -> LinkMismatch | None:
        """Compare the rows stored at ``position`` with what its event's payload states."""
        for row in rows:
            if row.id != event_id:
                return LinkMismatch(
                    row.position,
                    row.id,
                    row.target,
                    row.relation,
                    f"event_links holds a row at position {position} for event {row.id}, but "
                    f"the event at position {position} is {event_id}",
                )
        stored = {(row.target, row.relation) for row in rows}
        wanted = set(stated)
        # A row the payload does not state first (what a forgery adds), then a lack.
        extra, lacking = sorted(stored - wanted), sorted(wanted - stored)
        if extra:
            target, relation = extra[0]
            return LinkMismatch(
                position,
                event_id,
                target,
                relation,
                f"event_links holds a row saying the event at position {position} "
                f"{relation} event {target}; its payload does not say so",
            )
        if lacking:
            target, relation = lacking[0]
            return LinkMismatch(
                position,
                event_id,
                target,
                relation,
                f"the payload at position {position} {relation} event {target}, and "
                f"event_links has no such row",
            )
        self.checked += 1
        self.rows += len(rows)
        return None

    @staticmethod
    def stray(row: LinkRow, last: int) -> LinkMismatch:
        """A row at a position where the log holds no event."""
        return LinkMismatch(
            row.position,
            row.id,
            row.target,
            row.relation,
            f"event_links holds a row at position {row.position}, where the log has no event "
            f"(its positions are 1..{last})",
        )


# --------------------------------------------------------------------------------------------
# Projections: stored rows against a refold


@dataclass(frozen=True, slots=True)
class StoredSegment:
    """One row of ``segments`` as stored."""

    valid_from: datetime
    valid_to: datetime | None
    known_from: int
    known_to: int | None
    controller: str | None
    status: str
    status_by: str | None
    disputed: bool
    confidence: int
    basis: str
    body: bytes


@dataclass(frozen=True, slots=True)
class RowMismatch:
    """The first projection row of a place that differs from the refold, and why (the row's
    fields are None when the difference is not one row's)."""

    place: str | None
    valid_from: datetime | None
    valid_to: datetime | None
    known_from: int | None
    known_to: int | None
    reason: str


def sample_places(counts: Sequence[tuple[str, int]], budget: int) -> list[str]:
    """Places picked at random, each with a chance in proportion to its events, while their
    events fit in ``budget`` (places that no longer fit are passed over).

    Weighting by events gives every stored row about the same chance of being compared,
    ``budget / events`` of the log, whichever place it belongs to (a uniform draw of places
    would rarely reach the busy places, which hold most rows). The draw is unpredictable
    (the system's random source): whoever edits the tables cannot know which places the
    next verify looks at. Efraimidis and Spirakis' weighted draw without replacement: each
    place's key is ``u ** (1 / events)``, the largest keys first.
    """
    draw = random.SystemRandom()
    order = sorted(counts, key=lambda item: draw.random() ** (1 / item[1]), reverse=True)
    chosen: list[str] = []
    left = budget
    for place, events in order:
        if events <= left:
            chosen.append(place)
            left -= events
    return chosen


def check_place(
    place: str,
    events: Sequence[tuple[int, str]],
    stored: Sequence[StoredSegment],
    policy: Policy,
    sides: RegistryHistory | None = None,
    upto: int | None = None,
    streams: Sequence[str] | None = None,
) -> RowMismatch | None:
    """Refold a place's events and compare its stored rows with the refold's.

    ``events`` are (commit position, payload) in position order, as stored; the refold
    replays them commit by commit (:func:`~service.domain.bitemporal.history`), as a rebuild
    does, reading them through the side registry's history ``sides`` up to ``upto``.
    ``streams``: for a place a merge joined with others, each event's place stream.
    """
    try:
        if streams is None:
            streams = [place] * len(events)
        commits = stream_commits(
            (stream, commit, event_decoder.decode(payload))
            for stream, (commit, payload) in zip(streams, events, strict=True)
        )
        expected = history(place, commits, policy, sides, upto)
    except (msgspec.DecodeError, ValueError) as error:
        return RowMismatch(place, None, None, None, None, f"its events cannot be refolded: {error}")
    return compare_place(place, expected, stored)


_COMPARED: Final = (
    "valid_to", "known_to", "controller", "status", "status_by", "disputed", "confidence",
    "basis",
)  # fmt: skip
_body: Final = msgspec.json.Decoder(dict[str, Any])


def compare_place(
    place: str, expected: Sequence[HistoryRow], stored: Sequence[StoredSegment]
) -> RowMismatch | None:
    """The first difference between a place's stored rows and those of a refold, or None.

    Rows are matched by (known_from, valid_from), which is unique among a place's rows (one
    commit inserts one row per segment start), and compared column by column, the body
    field by field; the first row in that order that differs is named.
    """
    wanted = {(h.known_from, h.row.valid_from): h for h in expected}
    held: dict[tuple[int, datetime], StoredSegment] = {}
    for row in stored:
        key = (row.known_from, row.valid_from)
        if key in held:
            return _mismatch(place, row, "segments holds two rows for this valid and known start")
        held[key] = row
    for key in sorted(wanted.keys() | held.keys()):
        want, have = wanted.get(key), held.get(key)
        if have is None:
            assert want is not None  # the key came from one of the two
            return RowMismatch(
                place,
                want.row.valid_from,
                want.row.valid_to,
                want.known_from,
                want.known_to,
                "segments lacks this row of the refold",
            )
        if want is None:
            return _mismatch(place, have, "segments holds a row the refold does not make")
        reason = _differs(want, have)
        if reason is not None:
            return _mismatch(place, have, reason)
    return None


def _mismatch(place: str, row: StoredSegment, reason: str) -> RowMismatch:
    return RowMismatch(place, row.valid_from, row.valid_to, row.known_from, row.known_to, reason)


def _differs(want: HistoryRow, have: StoredSegment) -> str | None:
    """Why a stored row differs from the refold's row at the same key, or None."""
    refold = {
        "valid_to": want.row.valid_to,
        "known_to": want.known_to,
        "controller": want.row.controller,
        "status": want.row.status,
        "status_by": want.row.status_by,
        "disputed": want.row.disputed,
        "confidence": want.row.confidence,
        "basis": want.row.basis,
    }
    for column in _COMPARED:
        stored = getattr(have, column)
        if stored != refold[column]:
            return f"column {column} is {_short(stored)}; the refold says {_short(refold[column])}"
    if have.body != want.row.body:
        return _body_differs(want.row.body, have.body)
    return None


def _body_differs(want: bytes, have: bytes) -> str:
    """The first field of the body that differs, with both values (shortened)."""
    try:
        ours, theirs = _body.decode(want), _body.decode(have)
    except msgspec.DecodeError:
        return "the body is not the refold's (and not a JSON object)"
    for key in sorted(ours.keys() | theirs.keys()):
        if ours.get(key) != theirs.get(key):
            return (
                f"body.{key} is {_short(theirs.get(key))}; the refold says {_short(ours.get(key))}"
            )
    return "the body holds the refold's fields in other bytes"


def _short(value: object) -> str:
    """A value as a reason shows it: JSON (times in ISO 8601), at most 80 characters."""
    text = value.isoformat() if isinstance(value, datetime) else _json(value).decode()
    return text if len(text) <= 80 else text[:77] + "..."


_json: Final = msgspec.json.Encoder().encode


# --------------------------------------------------------------------------------------------
# The head, signed


class Head(msgspec.Struct, frozen=True, kw_only=True):
    """The log's latest position and hash, and when that commit was recorded."""

    position: int
    hash: str
    """Hex SHA-256 of the record at ``position`` chained to all before it."""
    recorded_at: datetime | None


def head_message(head: Head) -> bytes:
    """The exact bytes a head's signature covers."""
    fields = {
        "hash": head.hash,
        "position": head.position,
        "recorded_at": None if head.recorded_at is None else utc_text(head.recorded_at),
    }
    return HEAD_CONTEXT + _encode_sorted(fields)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 key pair that signs heads."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        """Load a PKCS#8 PEM private key; ValueError when it is not an Ed25519 key."""
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the signing key must be an Ed25519 private key (PKCS#8 PEM)")
        return cls(key)

    def pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def sign(self, head: Head) -> str:
        """The base64 signature of the head."""
        return base64.b64encode(self.private.sign(head_message(head))).decode()


def public_raw(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_pem(key: Ed25519PublicKey) -> str:
    """A public key as SubjectPublicKeyInfo PEM."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """A short name for a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_raw(key)).hexdigest()[:16]


def public_from_base64(text: str) -> Ed25519PublicKey:
    """A public key from its raw bytes in base64; ValueError when malformed."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as error:
        raise ValueError("the public key is not base64") from error
    return Ed25519PublicKey.from_public_bytes(raw)


def signature_valid(key: Ed25519PublicKey, head: Head, signature: str) -> bool:
    """Whether ``signature`` (base64) is the key's signature of ``head``."""
    try:
        key.verify(base64.b64decode(signature, validate=True), head_message(head))
    except (InvalidSignature, ValueError):
        return False
    return True


def check_saved_head(saved: Head, stored_hash: bytes | None, last_position: int) -> str | None:
    """Compare a head saved earlier with the log now; None when the log still holds it.

    ``stored_hash`` is the hash stored at ``saved.position`` (None when that row is gone),
    ``last_position`` the log's last position now.
    """
    if stored_hash is None:
        if saved.position > last_position:
            return (
                f"the saved head is at position {saved.position} but the log ends at "
                f"{last_position}: positions {last_position + 1}-{saved.position} were removed"
            )
        return f"position {saved.position} of the saved head is missing from the log"
    if stored_hash.hex() != saved.hash:
        return (
            f"position {saved.position} has another hash than the saved head: the log was altered"
        )
    return None
