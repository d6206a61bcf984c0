"""Domain types of a deconfliction mechanism: members, rules, volumes, activities, zones, conflicts.

Every type is immutable and already valid: wire formats are translated into these in
one place (``deconflict.formats`` and ``deconflict.mechanisms``) and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from deconflict.clock import parse_utc
from deconflict.geo import Footprint

ALT_MIN_M = -500.0
"""Lowest altitude accepted for a volume, metres above mean sea level."""
ALT_MAX_M = 30_000.0
"""Highest altitude accepted for a volume, metres above mean sea level."""
MAX_WINDOW_S = 31 * 24 * 3600.0
"""Default longest window of one volume: a month (a standing deployment is renotified monthly)."""
HORIZON_S = 180 * 24 * 3600.0
"""Default horizon: how far ahead of now a volume's window may start (half a year of planning)."""
LIVE_KEEPS_S = 24 * 3600.0
"""How long the live picture (the page, the TAK bridge, the picture exports) keeps what has ended: an activity,
or a conflict acknowledged, whose window ended longer ago than this is left to replay (the time bar's window
is as long). Unbounded, a year of operation put every activity ever notified in each read."""


def counts_after(end: Any, detected_at: Any, acknowledged: Any, at: datetime) -> bool:
    """Whether a conflict acknowledged (never resolved) still counts after ``at`` in the live picture, and
    in the time bar's picture around an instant: its window's ``end`` is after ``at``; one whose window its
    readers are not shown (a short-notice conflict under conflicts-only, a tactical one) by the last time
    they were shown it, its last acknowledgement, or else its detection (``detected_at``). Times are ISO
    8601 text; ``acknowledged`` is party → ``{"member", "at"}``."""
    if isinstance(end, str):
        return parse_utc(end, field="end") > at
    seen = [str(detected_at)] if detected_at else []
    seen += [str(a["at"]) for a in (acknowledged or {}).values() if isinstance(a, dict) and a.get("at")]
    return not seen or max(parse_utc(t, field="at") for t in seen) > at


class Role(StrEnum):
    PARTY = "party"
    FACILITATOR = "facilitator"
    OBSERVER = "observer"


class Disclosure(StrEnum):
    FULL = "full"
    CONFLICTS_ONLY = "conflicts-only"


class ActivityKind(StrEnum):
    AIR_SORTIE = "air_sortie"
    UAV_PATROL = "uav_patrol"
    GROUND_MOVEMENT = "ground_movement"
    DEPLOYMENT = "deployment"
    AIR_DEFENCE_ACTIVATION = "air_defence_activation"
    EXERCISE = "exercise"


class ActivityState(StrEnum):
    NOTIFIED = "notified"
    ACKNOWLEDGED = "acknowledged"
    ACTIVE = "active"
    ENDED = "ended"
    CANCELLED = "cancelled"


class ZoneKind(StrEnum):
    RED_LINE = "red_line"
    RESTRICTED = "restricted"
    PROTECTED = "protected"
    AIR_DEFENCE = "air_defence"


class ConflictKind(StrEnum):
    SEPARATION = "separation"
    """Two parties' volumes closer than the separation minima."""
    ZONE = "zone"
    """An activity inside a zone that forbids its kind."""
    SHORT_NOTICE = "short_notice"
    """A notice given with less than the minimum lead time."""
    TRACKS = "tracks"
    """Two parties' tracks predicted to lose separation within the look-ahead."""
    CONFORMANCE = "conformance"
    """A party's track outside every active volume its party notified."""
    INTRUSION = "intrusion"
    """A party's track inside another party's active volume."""


class ConflictStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    AMENDED = "amended"
    ACCEPTED = "accepted"
    ESCALATED = "escalated"
    CLEARED = "cleared"
    """A tactical conflict whose situation ended: separation kept (both tracks reported: contact lost in an
    encounter is not a resolution, since 2026-12-05), the track back inside, or no longer reported."""
    CANCELLED = "cancelled"
    """An activity in it was cancelled."""
    WITHDRAWN = "withdrawn"
    """The zone it was about was withdrawn by its owner."""


MANUAL_RESOLUTIONS = (Resolution.ACCEPTED, Resolution.ESCALATED)
"""How a member may close a conflict by hand; the others are recorded by the service when they happen. Amended
is one of those (an activity in the conflict amended or cancelled): by hand it let a member close a conflict
"as amended" with nothing amended, and the service then told the other party, in its own words, that an
activity in it was amended (refused since 2026-12-07; a record that holds one still verifies)."""


@dataclass(frozen=True)
class Rung:
    """One step of the escalation ladder: who is alerted, and how long they have to answer."""

    name: str
    after_s: float


@dataclass(frozen=True)
class Rules:
    """A mechanism's agreed rules. Times in seconds, distances in metres."""

    min_notice_s: float
    separation_m: float
    vertical_separation_m: float
    ack_deadline_s: float
    line_check_interval_s: float
    ladder: tuple[Rung, ...]
    disclosure: Disclosure = Disclosure.FULL
    area_margin_m: float = 0.0
    """How far outside the area of responsibility a footprint may reach (e.g. territorial sea)."""
    track_lookahead_s: float = 300.0
    """How far ahead tracks are extrapolated to predict a loss of separation."""
    track_stale_s: float = 60.0
    """A track with no report for this long leaves the picture."""
    conformance_tolerance_m: float = 1852.0
    """How far outside its party's notified volumes a track may be before it is reported."""
    max_window_s: float = MAX_WINDOW_S
    """Longest window one volume of a notice may have (end minus start)."""
    horizon_s: float = HORIZON_S
    """How far ahead of the time of notice a volume's window may start."""
    max_notice_area_km2: float = 10_000.0
    """Under conflicts-only, the most ground one notice (or preview) may cover, its footprints together."""
    max_notice_band_m: float = 10_000.0
    """Under conflicts-only, the deepest altitude band one volume may have."""
    max_notice_hours: float = 7 * 24.0
    """Under conflicts-only, the longest span one notice may have, from its first start to its last end."""
    previews_per_hour: int = 60
    """How many previews one member may ask for in any hour (under either disclosure)."""


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    role: Role
    party: str
    """The party code this member acts for (its own id for parties)."""
    language: str = "en"


@dataclass(frozen=True)
class Volume:
    """A 4D volume: footprint, altitude band (metres AMSL) and time window (UTC)."""

    id: str
    footprint: Footprint
    floor_m: float
    ceiling_m: float
    start: datetime | None
    """Start of the window; None (unbounded) only in ``deconflict check`` input."""
    end: datetime | None
    party: str = ""
    activity: str | None = None


@dataclass(frozen=True)
class Activity:
    id: str
    mechanism: str
    party: str
    kind: ActivityKind
    volumes: tuple[Volume, ...]
    state: ActivityState
    version: int
    notified_at: datetime
    """When this version was notified."""
    first_notified_at: datetime
    title: str = ""

    @property
    def start(self) -> datetime:
        return min(v.start for v in self.volumes if v.start is not None)

    @property
    def end(self) -> datetime:
        return max(v.end for v in self.volumes if v.end is not None)


@dataclass(frozen=True)
class Zone:
    """A declared area with a meaning; forbids some activity kinds during its validity window."""

    id: str
    mechanism: str
    owner: str
    """The party that declared it."""
    kind: ZoneKind
    name: str
    footprint: Footprint
    forbids: frozenset[ActivityKind]
    valid_from: datetime
    valid_to: datetime | None = None
    floor_m: float = ALT_MIN_M
    ceiling_m: float = ALT_MAX_M
    applies_to_owner: bool = False
    """Red lines bind the other parties; set True for zones that bind the declaring party too."""


@dataclass(frozen=True)
class Mechanism:
    id: str
    name: str
    area: Any
    """Area of responsibility: shapely (Multi)Polygon in lon/lat degrees."""
    area_name: str
    rules: Rules
    members: tuple[Member, ...] = ()
    zones: tuple[Zone, ...] = field(default=())

    def parties(self) -> set[str]:
        return {m.party for m in self.members if m.role is Role.PARTY}
