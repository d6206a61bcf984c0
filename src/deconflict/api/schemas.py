"""Wire schemas of the HTTP API. They check shape only; the domain checks meaning (one place)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict
from pydantic.config import JsonDict

from deconflict.hotline.messages import LANGUAGES, MessageType
from deconflict.model import ActivityKind, ActivityState, ConflictKind, ConflictStatus, Resolution, Role, ZoneKind

T4_CIRCLE = {"type": "Point", "coordinates": [37.6298, 34.5226]}

Number = Annotated[float, Strict()]
"""A JSON number: ``true`` or ``"2000"`` is refused, not read as 1.0 or 2000.0."""
Whole = Annotated[int, Strict()]
"""A JSON whole number: ``true``, ``"2"`` and ``2.0`` are refused."""
Flag = Annotated[bool, Strict()]
"""JSON ``true`` or ``false``: ``1`` or ``"yes"`` is refused."""
ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
"""What an id may hold (``formats.docs.ID_CHARACTERS``), stated in the document."""
TIME: JsonDict = {"format": "date-time"}
"""A time as the document states it: RFC 3339 (ISO 8601 with an offset); the service also bounds it."""


class VolumeIn(BaseModel):
    """A 4D volume: footprint, altitude band (metres AMSL) and window (ISO 8601 UTC)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "geometry": T4_CIRCLE,
                    "radius_m": 25000,
                    "floor_m": 1500,
                    "ceiling_m": 4500,
                    "start": "2025-04-09T08:00:00Z",
                    "end": "2025-04-09T11:00:00Z",
                }
            ]
        },
    )
    id: str | None = Field(
        None, description="Volume id, unique in the notice (default v1, v2, ...).", max_length=64, pattern=ID_PATTERN
    )
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon (lon, lat), or Point with radius_m.")
    radius_m: Number | None = Field(None, description="Radius of a circle footprint in metres (0 < r <= 500 km).")
    floor_m: Number = Field(description="Lower altitude, metres above mean sea level (-500..30000).")
    ceiling_m: Number = Field(description="Upper altitude, metres above mean sea level (-500..30000).")
    start: str = Field(
        description="Start, ISO 8601 with offset, e.g. 2025-04-09T08:00:00Z.", max_length=64, json_schema_extra=TIME
    )
    end: str = Field(description="End, after start.", max_length=64, json_schema_extra=TIME)


class NoticeIn(BaseModel):
    """A notice of planned activity."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "uav_patrol",
                    "title": "UAV patrol, T4",
                    "volumes": [VolumeIn.model_config["json_schema_extra"]["examples"][0]],
                }
            ]
        },
    )
    id: str | None = Field(
        None,
        description="Activity id, in the party's namespace (default: PARTY-NNNN).",
        max_length=64,
        pattern=ID_PATTERN,
    )
    kind: ActivityKind
    title: str = Field("", max_length=500)
    volumes: list[VolumeIn] = Field(min_length=1, max_length=100)


class AmendIn(BaseModel):
    """A new version of an activity. ``version`` is the version you saw: a stale one is refused (409)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"version": 1, "title": "UAV patrol, T4 (lowered)"}]},
    )
    version: Whole = Field(ge=1, le=1_000_000)
    kind: ActivityKind | None = None
    title: str | None = Field(None, max_length=500)
    volumes: list[VolumeIn] | None = Field(None, min_length=1, max_length=100)


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 2}]})
    version: Whole | None = Field(None, ge=1, le=1_000_000, description="The version you saw (optional).")


class ZoneIn(BaseModel):
    """A zone declared by the caller's party."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "TR-PROT-1",
                    "kind": "protected",
                    "name": "Aid convoy route",
                    "forbids": ["air_sortie", "exercise"],
                    "centre": [37.9, 34.6],
                    "radius_m": 5000,
                    "valid_from": "2025-04-09T00:00:00Z",
                }
            ]
        },
    )
    id: str = Field(max_length=64, pattern=ID_PATTERN)
    kind: ZoneKind
    name: str | None = Field(None, max_length=200)
    forbids: list[ActivityKind] = Field(min_length=1, max_length=10)
    geometry: dict[str, Any] | None = Field(
        None, description="GeoJSON Polygon/MultiPolygon, or give centre + radius_m."
    )
    centre: list[Number] | None = Field(None, min_length=2, max_length=2, description="[lon, lat] of a circle zone.")
    radius_m: Number | None = None
    floor_m: Number | None = None
    ceiling_m: Number | None = None
    valid_from: str = Field(max_length=64, json_schema_extra=TIME)
    valid_to: str | None = Field(None, max_length=64, json_schema_extra=TIME)
    applies_to_owner: Flag = False

    def doc(self) -> dict[str, Any]:
        raw = self.model_dump(exclude_none=True, mode="json")
        return raw


class ResolveIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"resolution": "accepted", "note": "Holding until 10:00Z"}]}
    )
    resolution: Literal["amended", "accepted", "escalated"] = Field(
        description="How the conflict was settled by hand; the service itself records cleared, cancelled and withdrawn."
    )
    note: str = Field("", max_length=500)


class ErrorOut(BaseModel):
    """Every error: what was wrong, in words, and the field it concerns when there is one."""

    detail: str
    field: str | None = None
    code: str | None = Field(
        None,
        description="For a malformed request, what kind of problem (e.g. float_parsing, missing); absent otherwise.",
    )


# --- what the service answers (documented, not re-validated on each answer: the routes build their
# documents themselves, and tests/api/test_input_schemathesis.py holds every answer to these) ---------


def _answer() -> ConfigDict:
    """An answer's model: the fields every answer of the kind has, typed; any other field the document may
    carry (a conflict's kind has its own) allowed."""
    return ConfigDict(extra="allow", populate_by_name=True)


class VolumeOut(BaseModel):
    """One volume of an activity as stored: a GeoJSON Point (with ``radius_m``) or Polygon, a band in metres
    above mean sea level, a window in UTC."""

    model_config = _answer()
    id: str
    geometry: dict[str, Any] = Field(description="GeoJSON Point or Polygon, WGS 84 longitude and latitude.")
    floor_m: float
    ceiling_m: float
    start: datetime
    end: datetime
    radius_m: float | None = Field(None, description="A Point's radius; absent for a Polygon.")


class ActivityOut(BaseModel):
    """An activity as the reader may see it: whole, or under ``conflicts-only`` another party's notice as
    ``partial``, its volumes empty and only the parts in conflict with the reader's (``overlap``)."""

    model_config = _answer()
    id: str
    party: str
    kind: ActivityKind
    state: ActivityState
    version: int
    notified_at: datetime
    title: str | None = None
    first_notified_at: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    volumes: list[VolumeOut] = Field(description="Every volume; empty when ``partial``.")
    phase: Literal["planned", "in_force", "between", "ended", "cancelled"] | None = Field(
        None, description="Where it stands at the service's now (between: between two volumes' windows)."
    )
    partial: bool | None = None
    overlap: list[dict[str, Any]] | None = Field(None, description="With ``partial``: the parts in conflict.")
    history: list[dict[str, Any]] | None = Field(None, description="Every version (``GET`` of one activity).")


class DetectedOut(BaseModel):
    """A conflict as detected and recorded (each kind has its own fields beside these): what a notice's
    answer lists as ``raised``, all open."""

    model_config = _answer()
    id: str
    kind: ConflictKind
    parties: list[str] = Field(description="The parties it concerns: they see it.")
    awaiting: list[str] = Field(
        description="The parties that must acknowledge it; those still to are the ones not in ``acknowledged``."
    )
    deadline: datetime | None = Field(None, description="By when, before the escalation ladder climbs.")
    activity: str | None = Field(None, description="The activity (or track) that raised it.")
    start: datetime | None = None
    end: datetime | None = None


class ConflictOut(DetectedOut):
    """A conflict: what was detected and where it stands."""

    model_config = _answer()
    status: ConflictStatus
    resolution: Resolution | None
    detected_at: datetime
    acknowledged: dict[str, dict[str, Any]] = Field(description="Party → who acknowledged it, and when.")
    resolved_at: datetime | None
    resolved_by: str | None = Field(description="The member who resolved it, or system (an amendment, a cancellation).")
    contact_lost: list[dict[str, Any]] | None = Field(
        None, description="A tracks conflict whose aircraft no longer report: each track and its last report."
    )


class ChangeOut(BaseModel):
    """What a notice, an amendment or a cancellation did: the activity now, the conflicts it raised and
    those it closed, and its entry in the record."""

    model_config = _answer()
    activity: ActivityOut
    raised: list[DetectedOut]
    resolved: list[str] = Field(description="The ids of the conflicts it closed.")
    seq: int


class MessageOut(BaseModel):
    """A hotline message worded in the reader's language (free text as written, with its language), and
    where it stands."""

    model_config = _answer()
    id: str
    seq: int
    type: MessageType
    from_: str = Field(alias="from", description="The sending member, or system.")
    to: list[str]
    template: str | None
    params: dict[str, str] = Field(description="A standard phrase's parameters as worded (UTC times, numbers).")
    text: str
    lang: str
    rtl: bool
    free_text: bool
    original: dict[str, str] | None = Field(description="Free text: as written, and its language.")
    about: dict[str, str] | None = Field(description='What it is about: {"kind": "conflict", "id": "C1"}.')
    needs_ack: bool
    sent_at: datetime
    deadline: datetime | None
    acknowledged: dict[str, dict[str, Any]]
    acknowledged_at: datetime | None
    escalation_steps: int
    status: Literal["info", "awaiting", "acknowledged", "closed"]
    awaiting: list[str]
    closed_at: datetime | None
    closed_note: str | None
    closed_resolution: Resolution | None


class EntryOut(BaseModel):
    """A record entry as drafted and hashed (what a party signs: the SHA-256 ``hash`` of the entry's head)."""

    model_config = _answer()
    mechanism: str
    seq: int
    at: datetime
    actor: str
    type: str
    payload: dict[str, Any]
    payload_hash: str
    prev_hash: str
    hash: str


class PreparedOut(BaseModel):
    """A prepared write (``Deconflict-Prepare: true``): nothing was appended. Check the entry is what was asked
    (its payload holds the request's fields; ``payload_hash`` is the SHA-256 of ``canonical_payload``), sign the
    bytes ``deconflict/entry/v1\n`` followed by ``prepared.hash`` (ASCII) with the party's Ed25519 key, and send
    the same request again with ``Deconflict-Signed-At`` (``prepared.at``), ``Deconflict-Entry-Hash``
    (``prepared.hash``), ``Deconflict-Key-Id`` and ``Deconflict-Signature``; a 409 naming ``signature`` means the
    record moved on meanwhile: prepare again. (docs/contracts.md; the Python client does all of it.)"""

    model_config = ConfigDict(extra="allow")
    prepared: EntryOut
    canonical_payload: str = Field(description="The payload's canonical JSON text (SHA-256: ``payload_hash``).")


class MemberOut(BaseModel):
    """A member of a mechanism: a party's duty officer, the facilitator, an observer."""

    model_config = _answer()
    id: str
    name: str
    role: Role
    party: str = Field(description="The party (or facilitator, observer) it speaks for.")
    language: str = Field(
        description="The language the service words it in.", json_schema_extra={"enum": list(LANGUAGES)}
    )


class MeOut(BaseModel):
    """Who the bearer token is, in which mechanism, and the service's clock."""

    model_config = _answer()
    mechanism: str
    member: MemberOut
    now: datetime = Field(description="The service's now (ISO 8601 UTC): count down to deadlines from it.")
