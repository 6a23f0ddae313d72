"""The audit: the signed head, its public key, and a verification of the hash chain and of
what is derived from it (links, projections)."""

from __future__ import annotations

import base64
import string
from typing import Annotated, cast

from litestar import Controller, get
from litestar.params import QueryParameter

from contracts.audit import PublicKey, SignedHead, VerifyReport
from service.api import parameters
from service.api.deps import ServicesDep
from service.api.problems import problem_spec
from service.domain.audit import key_id, public_pem, public_raw
from service.errors import NotFound
from service.query import MAX_POSITION, invalid_parameter
from service.store.audit import PROJECTION_MODES, ProjectionMode, SavedHead

BAD_PARAMETER = {422: problem_spec("A query parameter is invalid; `field` names it.")}


def _saved_head(position: int | None, hash_: str | None) -> SavedHead | None:
    if position is None and hash_ is None:
        return None
    if position is None:
        raise invalid_parameter(
            "head_position", "the position of the saved head (given with head_hash)", None
        )
    if hash_ is None:
        raise invalid_parameter(
            "head_hash", "the hash of the saved head (given with head_position)", None
        )
    if len(hash_) != 64 or any(c not in string.hexdigits for c in hash_):
        raise invalid_parameter("head_hash", "a chain hash: 64 hexadecimal digits", hash_)
    return SavedHead(position=position, hash=hash_.lower())


class AuditController(Controller):
    """Proof that the log was not altered."""

    tags = ["audit"]  # noqa: RUF012 (Litestar reads a plain class attribute)

    @get(
        "/v1/audit/head",
        operation_id="getAuditHead",
        summary="The log's head, signed",
        description=(
            "The latest position, its chain hash and when it was recorded; signed with "
            "Ed25519 when the service has a key (`FRONTLINE_SIGNING_KEY_FILE`). Save it to "
            "prove later that the log still holds it."
        ),
    )
    async def head(self, services: ServicesDep) -> SignedHead:
        """The head now."""
        return await services.audit.head()

    @get(
        "/v1/audit/key",
        operation_id="getAuditKey",
        summary="The public key that signs heads",
        responses={404: problem_spec("The service has no signing key.")},
    )
    async def key(self, services: ServicesDep) -> PublicKey:
        """The Ed25519 public key, raw (base64) and as PEM."""
        signing = services.audit.signing
        if signing is None:
            raise NotFound("the service has no signing key (FRONTLINE_SIGNING_KEY_FILE)")
        return PublicKey(
            algorithm="Ed25519",
            key_id=key_id(signing.public),
            public_key=base64.b64encode(public_raw(signing.public)).decode(),
            pem=public_pem(signing.public),
        )

    @get(
        "/v1/audit/verify",
        operation_id="verifyLog",
        summary="Recompute the hash chain; check the links and projections against the log",
        description=(
            "Recomputes, over positions `from`..`to` (default: all), each payload's digest, "
            "each record from the row's columns, each hash from the record and the previous "
            "hash, and checks that no position is missing and that the head agrees. With "
            "`head_position` and `head_hash` (a head saved earlier), also checks that the log "
            "still holds it: a truncated tail shows only this way. Answers the first position "
            "that does not verify and why. Over the same positions, `links` compares "
            "`event_links` with the links each payload states (every one present, no other "
            "row). `projections` compares the stored projection rows with a refold of the "
            "log up to the position the projections reached (the whole log, whatever "
            "`from` and `to`): `sample` (default) refolds places picked at random, about "
            "`FRONTLINE_VERIFY_SAMPLE` events; `full` every place (about as long as a "
            "rebuild); `off` none. `ok` is true when all three agree."
        ),
        responses=BAD_PARAMETER,
    )
    async def verify(
        self,
        services: ServicesDep,
        from_: Annotated[
            int | None,
            QueryParameter(name="from", ge=1, le=MAX_POSITION, description="First position."),
        ] = None,
        to: Annotated[
            int | None, QueryParameter(ge=0, le=MAX_POSITION, description="Last position.")
        ] = None,
        head_position: Annotated[
            int | None,
            QueryParameter(ge=0, le=MAX_POSITION, description="Position of a saved head."),
        ] = None,
        head_hash: Annotated[
            str | None,
            QueryParameter(
                description="Hash (hex) of the saved head; given with `head_position`.",
                pattern=parameters.HASH_PATTERN,
            ),
        ] = None,
        projections: Annotated[
            str | None,
            QueryParameter(
                description="Which places' projection rows to refold and compare: "
                "`sample` (default), `full` or `off`.",
                pattern=parameters.words_pattern(PROJECTION_MODES),
            ),
        ] = None,
    ) -> VerifyReport:
        """The verification report (200 whether or not the log verifies: see `ok`)."""
        saved = _saved_head(head_position, head_hash)
        mode = parameters.one_of(projections, PROJECTION_MODES, "projections") or "sample"
        return await services.audit.verify(from_, to, saved, cast(ProjectionMode, mode))
