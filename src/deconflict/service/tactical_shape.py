"""What a tactical conflict's entry must say of itself, given its kind and the rules: who it concerns and
awaits, its deadline, the evidence it carries, the figures the rules fix, and nothing else.

Tactical conflicts are raised from track reports, which are not entries, so ``ledger verify`` cannot
recompute *whether* the tracks were in conflict; it holds each one to the shape
:mod:`deconflict.service.tracks` gives it (:mod:`deconflict.service.recheck` calls :func:`problems`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from deconflict.clock import iso
from deconflict.model import ConflictKind, Rules
from deconflict.record import salt

__all__ = ["FIELDS", "LEAST_ACK_S", "SHORTENED_SINCE", "deadline", "problems", "shortened"]

_COMMON = frozenset({"id", "kind", "activity", "parties", "awaiting", "party", "deadline", "track_states"})
FIELDS = {
    ConflictKind.TRACKS.value: _COMMON
    | {"other_activity", "distance_m", "tcpa_s", "t_in_s", "t_out_s", "separation_m", "vertical_separation_m"},
    ConflictKind.CONFORMANCE.value: _COMMON | {"tolerance_m"},
    ConflictKind.INTRUSION.value: _COMMON | {"other_activity", "other_party"},
}
"""The fields the service writes in a tactical conflict, by kind."""

LEAST_ACK_S = 60.0
"""The least time, in seconds, a party is given to acknowledge a predicted loss of separation between tracks
(see :func:`deadline`): a person must be able to read the alert and answer before the ladder climbs."""


def deadline(kind: str, t_in_s: Any, at: datetime, rules: Rules) -> datetime:
    """When a tactical conflict detected at ``at`` must be acknowledged (its alerts carry it; past it the
    ladder climbs): the rules' acknowledgement deadline, or, for tracks predicted to lose separation in
    ``t_in_s`` seconds, that moment when it comes sooner, though never in less than :data:`LEAST_ACK_S`.
    An alert whose deadline fell after the loss of separation it warns of would climb the ladder only once
    the aircraft had met."""
    due_s = rules.ack_deadline_s
    if kind == ConflictKind.TRACKS.value and isinstance(t_in_s, int | float) and not isinstance(t_in_s, bool):
        try:
            due_s = min(due_s, max(float(t_in_s), LEAST_ACK_S))
        except OverflowError:  # an integer beyond any float (a record being checked may hold anything)
            pass
    return at + timedelta(seconds=due_s)


def shortened(p: dict[str, Any], at: datetime, rules: Rules) -> datetime | None:
    """The deadline tactical conflict ``p`` detected at ``at`` carries when :func:`deadline` made it sooner than
    the rules' (tracks about to meet), which its alerts carry too; None otherwise (its alerts are due at the
    rules' deadline from their own time, as every alert)."""
    due = deadline(str(p.get("kind")), p.get("t_in_s"), at, rules)
    if due < at + timedelta(seconds=rules.ack_deadline_s) and p.get("deadline") == iso(due):
        return due
    return None


SHORTENED_SINCE = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
"""From this instant the service gives tracks about to meet their :func:`deadline`; a tracks conflict detected
before it may carry the rules' deadline, as the service wrote it then."""


def problems(p: dict[str, Any], at: datetime, rules: Rules, parties: set[str], owner_of: dict[str, str]) -> list[str]:
    """What is wrong with tactical conflict ``p`` detected at ``at`` (``parties``: the mechanism's parties,
    which alone report tracks; ``owner_of``: activity id → party, for an intrusion's other activity)."""
    kind = str(p.get("kind"))
    tracks = [p.get("activity")] + ([p.get("other_activity")] if kind == ConflictKind.TRACKS.value else [])
    track_parties = [str(n).split("/", 1)[0] for n in tracks if isinstance(n, str)]
    out = []
    strangers = sorted(set(track_parties) - parties)
    if strangers or len(track_parties) != len(tracks):
        out.append(f"its tracks {tracks} are not all of parties of the mechanism (tracks come only from parties)")
    concerned = set(track_parties)
    if kind == ConflictKind.INTRUSION.value:
        owner = owner_of.get(str(p.get("other_activity")))
        if owner is None or p.get("other_party") != owner:
            out.append(
                f"other_party {p.get('other_party')!r}, where activity {p.get('other_activity')!r} is {owner!r}'s"
            )
        concerned.add(str(owner))
    expected = sorted(concerned)
    if p.get("awaiting") != expected or p.get("parties") != expected:
        out.append(f"awaits {p.get('awaiting')} among {p.get('parties')}, where the rules give {expected}")
    if track_parties and p.get("party") != track_parties[0]:
        out.append(f"party {p.get('party')!r}, where its first track is {track_parties[0]!r}'s")
    due = iso(deadline(kind, p.get("t_in_s"), at, rules))
    given = [due]
    if at < SHORTENED_SINCE:  # what the service wrote before it gave tracks about to meet a sooner deadline
        given.append(iso(at + timedelta(seconds=rules.ack_deadline_s)))
    if p.get("deadline") not in given:
        out.append(f"deadline {p.get('deadline')} where the rules give {' or '.join(dict.fromkeys(given))}")
    fixed = {
        ConflictKind.TRACKS.value: {
            "separation_m": rules.separation_m,
            "vertical_separation_m": rules.vertical_separation_m,
        },
        ConflictKind.CONFORMANCE.value: {"tolerance_m": rules.conformance_tolerance_m},
    }.get(kind, {})
    out += [f"{k} {p.get(k)!r} where the rules give {v!r}" for k, v in fixed.items() if p.get(k) != v]
    extra = sorted(set(p) - FIELDS.get(kind, _COMMON) - {salt.FIELD})  # the salt: record/salt.py's rule
    if extra:
        out.append(f"it carries {', '.join(extra)}, which the service never writes in a {kind} conflict")
    states = p.get("track_states")
    named = (
        [f"{st.get('party')}/{st.get('id')}" for st in states if isinstance(st, dict)]
        if isinstance(states, list)
        else []
    )
    if named != tracks:
        out.append(f"its evidence holds the states of {named or 'no track'}, not of {tracks}")
    return out
