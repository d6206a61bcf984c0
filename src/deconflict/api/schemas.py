"""Wire schemas of the HTTP API. They check shape only; the domain checks meaning (one place)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict
from pydantic.config import JsonDict

from deconflict.hotline.messages import LANGUAGES, MessageType
from deconflict.model import (
    ActivityKind,
    ActivityState,
    ConflictKind,
    ConflictStatus,
    Disclosure,
    Resolution,
    Role,
    ZoneKind,
)

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
    resolution: Literal["accepted", "escalated"] = Field(
        description="How the conflict was settled by hand; the service itself records amended (an activity in it "
        "amended or cancelled), cleared, cancelled and withdrawn."
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


class RungOut(BaseModel):
    """A rung of the escalation ladder: who is alerted, and how long they have to answer."""

    model_config = _answer()
    name: str
    answer_within_min: float


class RulesOut(BaseModel):
    """The mechanism's agreed rules (minutes, metres, seconds, days as named). The caps on a notice and on
    previews are there under ``conflicts-only``."""

    model_config = _answer()
    min_notice_min: float
    separation_m: float = Field(description="Horizontal separation minimum between two parties' volumes.")
    vertical_separation_m: float
    ack_deadline_min: float = Field(description="How long a party has to acknowledge before the ladder climbs.")
    line_check_interval_min: float
    disclosure: Disclosure = Field(
        description="full: every party sees every notice; conflicts-only: another party's notice only where it "
        "conflicts with one's own."
    )
    area_margin_m: float
    track_lookahead_s: float
    track_stale_s: float
    conformance_tolerance_m: float
    max_window_days: float
    horizon_days: float
    ladder: list[RungOut] = Field(description="The escalation ladder, first rung first.")
    max_notice_area_km2: float | None = None
    max_notice_band_m: float | None = None
    max_notice_hours: float | None = None
    previews_per_hour: int | None = None


class AreaOut(BaseModel):
    """The mechanism's area of responsibility."""

    model_config = _answer()
    name: str
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon, WGS 84.")


class MechanismOut(BaseModel):
    """A mechanism: its area, its rules and its members."""

    model_config = _answer()
    id: str
    name: str
    area: AreaOut
    rules: RulesOut
    members: list[MemberOut]


class ZoneOut(BaseModel):
    """A zone (red line, restricted, protected or air-defence area): where, which band, when, and which
    activity kinds it forbids."""

    model_config = _answer()
    id: str
    owner: str = Field(description="The party that declared it.")
    kind: ZoneKind
    name: str
    geometry: dict[str, Any] = Field(description="GeoJSON Point (with ``radius_m``) or Polygon, WGS 84.")
    radius_m: float | None = None
    forbids: list[ActivityKind]
    floor_m: float
    ceiling_m: float
    valid_from: datetime
    valid_to: datetime | None
    applies_to_owner: bool = Field(description="Whether the owner's own activities are held to it too.")
    declared_at: datetime | None = None
    withdrawn_at: datetime | None = Field(None, description="When its owner withdrew it; null while in force.")


class ZoneDeclaredOut(BaseModel):
    """A zone declared: the zone, the conflicts it raised with activities in force, its entry in the record."""

    model_config = _answer()
    zone: ZoneOut
    raised: list[DetectedOut]
    seq: int


class ZoneWithdrawnOut(BaseModel):
    """A zone withdrawn (its conflicts resolve as ``withdrawn``), and its entry in the record."""

    model_config = _answer()
    withdrawn: str
    seq: int


class TemplateOut(BaseModel):
    """A standard phrase: its agreed wording in the caller's language, with ``{param}`` placeholders."""

    model_config = _answer()
    id: str
    type: MessageType
    needs_ack: bool
    params: list[str]
    text: str
    lang: str
    rtl: bool
    sendable: bool = Field(description="Whether a member may send it (the others are the service's own).")


class WaitingItemOut(BaseModel):
    """Something that waits on the caller's party: a conflict to acknowledge (with its alerts), or a message
    to answer."""

    model_config = _answer()
    kind: Literal["conflict", "message"]
    id: str
    type: str = Field(description="The conflict's kind, or the message's type.")
    deadline: datetime
    overdue: bool
    alerts: list[str] = Field(description="A conflict's alerts that wait on the party (message ids).")
    rung: int = Field(description="How far up the ladder it has climbed (0: the first rung).")
    rung_name: str | None
    next_step_at: datetime | None = Field(description="When it climbs next if nobody answers; null at the last rung.")
    next_rung_name: str | None
    summary: str | None = Field(description="Its alert's or message's text, in the caller's language.")


class WaitingOut(BaseModel):
    """What waits on the caller's party now, soonest deadline first."""

    model_config = _answer()
    now: datetime
    party: str
    items: list[WaitingItemOut]


class PreviewConflictOut(BaseModel):
    """A conflict a draft notice would raise (each kind has its own fields: ``other_party``,
    ``other_activity`` and ``distance_m`` for a separation, ``zone``, ``zone_kind`` and ``zone_owner`` for a
    zone; under ``conflicts-only`` another party's notice only as ``overlap``)."""

    model_config = _answer()
    kind: ConflictKind
    start: datetime | None = None
    end: datetime | None = None


class PreviewOut(BaseModel):
    """What a draft notice would raise, sent now. Nothing was recorded."""

    model_config = _answer()
    conflicts: list[PreviewConflictOut]


class TrackOut(BaseModel):
    """A track in the picture, flown on from its last report to now (SI units: metres, metres a second)."""

    model_config = _answer()
    track: str = Field(description="PARTY/id.")
    party: str
    id: str
    reported_at: datetime
    lat: float
    lon: float
    alt_m: float
    gs_mps: float
    trk_deg: float
    vs_mps: float


class TracksOut(BaseModel):
    """The tracks the caller may see."""

    model_config = _answer()
    tracks: list[TrackOut]


class TracksReportedOut(BaseModel):
    """Reports stored, and what the tactical check found at once: conflicts raised and those that cleared."""

    model_config = _answer()
    stored: int
    raised: list[DetectedOut]
    cleared: list[str] = Field(description="The ids of the conflicts that cleared.")


class RecordEntryOut(EntryOut):
    """A signed record entry as the caller may receive it: whole, or ``withheld`` without its payload (its
    hashes kept, so the chain still verifies); a hotline message's entry carries the message as worded for
    the caller."""

    model_config = _answer()
    payload: dict[str, Any] | None = None  # type: ignore[assignment]
    key_id: str | None = None
    signature: str | None = None
    withheld: bool | None = None
    message: MessageOut | None = None


class RecordOut(BaseModel):
    """A page of the record: ask again with ``after`` = ``next_after`` until ``entries`` is empty."""

    model_config = _answer()
    entries: list[RecordEntryOut]
    next_after: int


class HeadOut(BaseModel):
    """The record's head: the last entry's sequence number and hash."""

    model_config = _answer()
    seq: int
    hash: str


class WindowOut(BaseModel):
    """The span a replay around an instant covers: from ``since`` to the instant."""

    model_config = _answer()
    since: datetime
    hours: float


class ReplayOut(BaseModel):
    """The state as it stood at an instant, rebuilt from the record, as the caller could see it then."""

    model_config = _answer()
    mechanism: str
    at: datetime
    head: HeadOut | None
    activities: list[ActivityOut]
    zones: list[ZoneOut]
    conflicts: list[ConflictOut]
    messages: list[MessageOut]
    window: WindowOut | None = Field(None, description="With ``window_h``: the span it covers.")
    still_to_come: bool = Field(
        False,
        description="The instant lies after the service's now: this is the record as it stands now, and an "
        "alert that would climb or a deadline that would pass by then is not in it (the activities' phase is "
        "their window's at the instant).",
    )


class KeyOut(BaseModel):
    """A public key the record registered: whose, who holds its private half, and its fingerprint."""

    model_config = _answer()
    key_id: str
    fingerprint: str
    owner: str
    public_key: str = Field(description="Ed25519, base64.")
    custody: str
    registered_seq: int
    registered_at: datetime
    revoked_seq: int | None


class KeysOut(BaseModel):
    """Every key the record registered."""

    model_config = _answer()
    keys: list[KeyOut]
