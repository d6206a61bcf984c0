"""Checkpoint notes, Merkle proofs and the parties' cosignatures over HTTP (included by ``events``).

A party's mirror (``deconflict mirror``) reads the service's note key here, asks for the consistency
proof from the last checkpoint it cosigned to each new one, and posts its cosignature back; anyone
can then read each checkpoint note with every cosignature collected so far.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from deconflict.api.deps import MemberDep, ServiceDep
from deconflict.service import checkpoints as notes

__all__ = ["router"]

router = APIRouter()
MAX_SIZE = 2**62


class CosignatureIn(BaseModel):
    """A party's cosignature of a checkpoint note: one signature line."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "cosignature": "\u2014 deconflict.example/tr-il-syria/TR "
                    "mOEyawAAAABnVhpYz5Xc7+ZfS6H2eN0Xq8kZpQb2r7tKfA3sJmW9Lx0cX4uGvN1hT6yDzI5oR8aEjF2pQ3wM0nB7kY1cV5sU4tH9gA=="
                }
            ]
        }
    )

    cosignature: str = Field(
        max_length=400,
        description="The signature line as it goes under the note: '— <origin>/<party> <base64>' "
        "(C2SP cosignature/v1, made with the party's registered record key).",
    )


@router.get("/mechanisms/{mechanism_id}/checkpoints/keys", summary="Verifier keys of checkpoint notes")
def note_keys(caller: MemberDep, service: ServiceDep) -> dict[str, Any]:
    """The C2SP verifier keys (vkeys): ``service`` signs the checkpoint notes (its name is the
    ``origin``, ``deconflict.example/<mechanism>``), and each party's ``cosigners`` entry is its record
    key used as a ``cosignature/v1`` key named ``<origin>/<party>``. The service's vkey holds the same
    public key as the ``service_key`` of the record's first entry: check it there."""
    return notes.note_keys(service.context, caller.mechanism_id)


@router.get("/mechanisms/{mechanism_id}/proof/consistency", summary="Merkle consistency proof between two sizes")
def consistency(
    caller: MemberDep,
    service: ServiceDep,
    first: Annotated[int, Query(alias="from", ge=1, le=MAX_SIZE, description="The older tree's size.")],
    second: Annotated[int, Query(alias="to", ge=1, le=MAX_SIZE, description="The newer tree's size.")],
) -> dict[str, Any]:
    """RFC 9162 consistency proof (base64 hashes, leaf side first) that the record's first ``to``
    entries begin with its first ``from`` entries. Check it against the root you cosigned at
    ``from``; ``from_root`` and ``to_root`` are the service's own roots, given for convenience."""
    return notes.consistency(service.context, caller.mechanism_id, first, second)


@router.get("/mechanisms/{mechanism_id}/proof/inclusion", summary="Merkle inclusion proof of one entry")
def inclusion(
    caller: MemberDep,
    service: ServiceDep,
    seq: Annotated[int, Query(ge=1, le=MAX_SIZE, description="The entry's sequence number.")],
    size: Annotated[int, Query(ge=1, le=MAX_SIZE, description="The tree's size (a checkpoint's).")],
) -> dict[str, Any]:
    """RFC 9162 inclusion proof (base64 hashes) that entry ``seq`` (leaf ``seq - 1``, its chain hash)
    is in the tree of the first ``size`` entries."""
    return notes.inclusion(service.context, caller.mechanism_id, seq, size)


@router.post("/mechanisms/{mechanism_id}/checkpoints/{seq}/cosignature", summary="Cosign a checkpoint note (a party)")
def cosign(
    caller: MemberDep,
    service: ServiceDep,
    body: CosignatureIn,
    seq: Annotated[int, Path(ge=1, le=MAX_SIZE, description="The checkpoint's size (its last entry).")],
) -> dict[str, Any]:
    """Keep the caller's party's cosignature of checkpoint ``seq``, checked with the party's record key
    (in force, held by the party alone). The first cosignature a party sends for a checkpoint is kept
    (``kept`` false for a repeat). Answers with the note and every cosignature so far."""
    return notes.add_cosignature(service.context, caller.mechanism_id, seq, caller.member.party, body.cosignature)
