"""Whether an entry's signer had the right to say it: the authority rules checked over a small state.

A signature proves which key signed an entry; the rules (:data:`deconflict.record.rules.RULES`,
the table) say whether its signer had the right to say it. They hold for the service before it
appends (it must never write what verify would refuse) and for ``deconflict ledger verify`` over a
copy of the record, entry by entry. Key registrations' own checks are
:mod:`deconflict.record.registration`.

API (pure: no database, no clock)::

    from deconflict.record.authority import AuthorityState, check, apply

    state = AuthorityState()
    for doc in entries:                 # entry documents in sequence order
        problem = check(doc, state)     # None, or what is wrong in words (no "entry N:" prefix)
        if problem: ...
        apply(doc, state)               # take in what the entry binds or opens

``doc`` is an entry document: ``seq``, ``actor``, ``type`` and ``payload`` (absent when the copy
withholds it: then only what does not need the payload is checked, and references the state
cannot know any more are let pass).

A member speaks only for its own party: the payload field a rule names (``party``, ``owner``,
``from_party``) must be the party of the member who wrote it. The service and the operator speak
for no party, except the operator's founding declarations (a party's first key, the agreed
mechanism's zones) made in the founding block: entry 1 and the declarations (keys, members,
zones) directly after it, before anything else happens.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from deconflict.record import salt
from deconflict.record.chain import SERVICE, EntryType
from deconflict.record.registration import check_key_registered, check_key_revoked, fingerprint_ok
from deconflict.record.rules import (
    AUTHORS,
    FACILITATOR,
    FOUNDING_TYPES,
    MEMBERS,
    OBSERVER,
    OPERATOR,
    PARTY,
    RULES,
    SYSTEM,
)

__all__ = [
    "AUTOMATIC_RESOLUTIONS",
    "MANUAL_RESOLUTIONS",
    "RESERVED_IDS",
    "AuthorityState",
    "Conflict",
    "apply",
    "check",
]

AUTOMATIC_RESOLUTIONS = frozenset({"amended", "cancelled", "withdrawn", "cleared"})
"""How the service itself closes a conflict (an activity amended or cancelled, a zone withdrawn, tracks apart)."""
MANUAL_RESOLUTIONS = frozenset({"amended", "accepted", "escalated"})
"""How a member closes a conflict by hand (mirrors ``deconflict.model.MANUAL_RESOLUTIONS``)."""
RESERVED_IDS = frozenset({SYSTEM, OPERATOR, SERVICE})
"""Names no member may have, nor act for: the service's own actors."""


@dataclass(slots=True)
class Conflict:
    """What the rules need to know of a detected conflict."""

    seq: int
    awaiting: frozenset[str]
    acknowledged: frozenset[str] = frozenset()
    resolved_seq: int | None = None


MOST_PARTY_SETS = 4096
"""How many distinct sets of parties :func:`parties` shares (a mechanism has a handful: each party, the pairs);
past that, a new set is kept on its own."""
SHARED_NAME = 64
"""The longest party name in a set :func:`parties` shares, and the most names (what a record's writer chose,
however long, is never kept beyond the state that holds it)."""

_PARTY_SETS: dict[frozenset[str], frozenset[str]] = {}


def _party(name: Any) -> str:
    """A party's name, one string for every entry that names it (when it is no longer than a party's name)."""
    text = str(name)
    return sys.intern(text) if len(text) <= SHARED_NAME else text


def parties(names: Iterable[Any]) -> frozenset[str]:
    """The set of these party names, shared with every equal set the state holds: the state keeps one for each
    message and conflict of the record, which a long-running service holds for as long as it runs (a set of
    one name costs over 200 bytes; a shared one costs a reference)."""
    found = frozenset(map(_party, names))
    if len(found) > SHARED_NAME or any(len(n) > SHARED_NAME for n in found):
        return found  # not what a mechanism's parties look like: kept on its own
    kept = _PARTY_SETS.get(found)
    if kept is not None:
        return kept
    if len(_PARTY_SETS) < MOST_PARTY_SETS:
        _PARTY_SETS[found] = found
    return found


@dataclass
class AuthorityState:
    """What earlier entries bound, kept while streaming: small and pure."""

    members: dict[str, tuple[str, str]] = field(default_factory=dict)
    """member id → (party, role)."""
    keys: dict[str, tuple[str, bool, str]] = field(default_factory=dict)
    """key id → (owner, revoked, public key)."""
    conflicts: dict[str, Conflict] = field(default_factory=dict)
    activities: dict[str, str] = field(default_factory=dict)
    """activity id → party."""
    zones: dict[str, str] = field(default_factory=dict)
    """zone id → owner."""
    messages: dict[str, frozenset[str]] = field(default_factory=dict)
    """message id → parties it is addressed to."""
    founding: bool = True
    """Still in the founding block."""
    withheld: bool = False
    """Some payload was withheld: a reference to something unseen may be to a withheld entry."""
    mechanism: str = ""
    """The mechanism's id (what key registrations sign); taken from entries that carry it when empty."""

    def in_force(self, owner: str) -> bool:
        """Whether ``owner`` has a registered key not revoked."""
        return any(o == owner and not revoked for o, revoked, _ in self.keys.values())

    def parties(self) -> set[str]:
        return {party for party, _ in self.members.values()}


def _author(actor: str, state: AuthorityState) -> tuple[str, str | None] | None:
    """(author kind, party) of an actor, or None for an actor who is no member."""
    if actor in (SYSTEM, OPERATOR):
        return actor, None
    member = state.members.get(actor)
    return (member[1], member[0]) if member is not None else None


def check(doc: dict[str, Any], state: AuthorityState) -> str | None:
    """What is wrong with ``doc`` under the authority rules given ``state`` (earlier entries), or None."""
    raw, actor, seq = doc.get("type"), str(doc.get("actor")), doc.get("seq")
    if not state.mechanism:
        state.mechanism = str(doc.get("mechanism") or doc.get("mechanism_id") or "")
    try:
        kind = EntryType(str(raw))
    except ValueError:
        return f"unknown entry type {raw!r} (the record has no such kind of entry)"
    rule = RULES[kind]
    if kind == EntryType.MECHANISM_DECLARED:
        if seq != 1:
            return "a second mechanism.declared: the mechanism is declared once, by entry 1"
    elif seq == 1:
        return f"entry 1 is {kind}, but a record starts with mechanism.declared"
    author = _author(actor, state)
    if author is None:
        return f"its actor {actor!r} is not a member of the mechanism at that point"
    role, party = author
    if role not in rule.authors:
        who = f"{actor} ({role} of {party})" if party else actor
        return f"{kind} may be written only by {_words(rule.authors)}, not by {who}"
    if "payload" not in doc:
        if rule.never_withheld:
            return f"withheld, but it binds keys or members ({kind}); a copy may never withhold it"
        return None
    p = doc["payload"]
    if not isinstance(p, dict):
        return f"its payload is not an object as {kind} requires"
    if rule.speaks_for and party is not None and p.get(rule.speaks_for) != party:
        return (
            f"{actor} acts for {party} but its {kind} speaks for {p.get(rule.speaks_for)!r} "
            f"({rule.speaks_for}); a party speaks only for itself"
        )
    problem: str | None = _CHECKS[kind](p, role, party, state)
    if problem is None:  # what the entry says first, then whether its hash can be guessed
        problem = salt.problem(kind.value, doc.get("at"), p)
    return problem


def _words(authors: frozenset[str]) -> str:
    names = {
        SYSTEM: "the service (system)",
        OPERATOR: "the operator",
        PARTY: "a party's member",
        FACILITATOR: "the facilitator",
        OBSERVER: "an observer",
    }
    return " or ".join(names[a] for a in AUTHORS if a in authors)


Check = Any  # (payload, role, party, state) -> str | None


def _declared(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    members = p.get("members")
    if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
        return "mechanism.declared without its list of members"
    ids = [m.get("id") for m in members]
    if len(set(ids)) != len(ids):
        return "mechanism.declared names a member id twice"
    for m in members:
        problem = _member_problem(m)
        if problem:
            return f"mechanism.declared: {problem}"
    sk = p.get("service_key")
    if not isinstance(sk, dict) or not fingerprint_ok(sk.get("key_id"), sk.get("public_key")):
        return "mechanism.declared carries no readable service key whose key id is its fingerprint"
    return None


def _member_problem(m: dict[str, Any]) -> str | None:
    mid, mparty, mrole = m.get("id"), m.get("party"), m.get("role")
    if not isinstance(mid, str) or not mid or mid in RESERVED_IDS:
        return f"member id {mid!r} is not one a member may have"
    if not isinstance(mparty, str) or not mparty or mparty in RESERVED_IDS:
        return f"member {mid} acts for {mparty!r}, which is not a party"
    if mrole not in MEMBERS:
        return f"member {mid} has role {mrole!r} (a member is a party, facilitator or observer)"
    return None


def _member_added(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    problem = _member_problem(p)
    if problem:
        return problem
    mid = p["id"]
    if mid in state.members:
        was_party, was_role = state.members[mid]
        return (
            f"adds member {mid} again (declared as {was_role} of {was_party}); members, their parties and "
            "roles never change"
        )
    roles = {r for pty, r in state.members.values() if pty == p["party"]}
    if not roles and not state.founding:
        return (
            f"adds member {mid} for {p['party']}, which is no party of the mechanism: its parties are fixed by the "
            "founding agreement"
        )
    if roles and p["role"] not in roles:
        return (
            f"adds member {mid} as {p['role']} of {p['party']}, whose members are {' and '.join(sorted(roles))}: "
            "a party's standing in the mechanism is fixed by the founding agreement"
        )
    return None


def _activity(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    aid = p.get("id")
    known = state.activities.get(str(aid))
    if known is not None and known != party:
        return f"activity {aid} belongs to {known}, not to {party}"
    return None


def _notified(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    aid = p.get("id")
    problem = _activity(p, role, party, state)
    if problem is not None:
        return problem
    if party is not None and not str(aid).startswith(f"{party}-"):
        return f"notifies activity {aid!r} for {party}: a party's activity ids begin with '{party}-' (its namespace)"
    if str(aid) in state.activities:
        return f"notifies activity {aid} again: an activity id is notified once (then amended)"
    return None


def _activity_known(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    aid = p.get("id")
    if str(aid) not in state.activities and not state.withheld:
        return f"activity {aid} was never notified"
    return _activity(p, role, party, state)


def _zone_declared(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    if role == OPERATOR:
        if not state.founding:
            return "the operator declares zones only in the founding block (the agreed mechanism's zones)"
        if p.get("owner") not in state.parties():
            return f"zone {p.get('id')} is declared for {p.get('owner')!r}, which is no party of the mechanism"
    if str(p.get("id")) in state.zones:
        return f"zone {p.get('id')} was already declared"
    return None


def _zone_withdrawn(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    zid = p.get("id")
    owner = state.zones.get(str(zid))
    if owner is None:
        return None if state.withheld else f"withdraws zone {zid}, which was never declared"
    if owner != party:
        return f"a member of {party} withdraws zone {zid} of {owner}; only its owner may"
    return None


def _detected(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    cid = p.get("id")
    if str(cid) in state.conflicts:
        return f"conflict {cid} was already detected at entry {state.conflicts[str(cid)].seq}"
    if not isinstance(p.get("awaiting", []), list):
        return f"conflict {cid}: awaiting is not a list of parties"
    return None


def _conflict(cid: Any, state: AuthorityState) -> tuple[Conflict | None, str | None]:
    c = state.conflicts.get(str(cid))
    if c is None and not state.withheld:
        return None, f"conflict {cid} was never detected"
    return c, None


def _acknowledged(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    c, problem = _conflict(p.get("id"), state)
    if c is None:
        return problem
    return _awaits(c, str(p.get("id")), str(party))


def _awaits(c: Conflict, cid: str, party: str) -> str | None:
    if party not in c.awaiting:
        return f"conflict {cid} awaits {', '.join(sorted(c.awaiting)) or 'nobody'}, not {party}"
    if c.resolved_seq is not None:
        return f"conflict {cid} was resolved at entry {c.resolved_seq}; nothing is left to acknowledge"
    if party in c.acknowledged:
        return f"{party} already acknowledged conflict {cid}"
    return None


def _resolved(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    cid, how = p.get("id"), p.get("resolution")
    if role == SYSTEM and how not in AUTOMATIC_RESOLUTIONS:
        return f"the service resolves conflict {cid} as {how!r}; by itself it records only automatic resolutions"
    if role != SYSTEM and how not in MANUAL_RESOLUTIONS:
        return f"a member resolves conflict {cid} as {how!r}; by hand only {', '.join(sorted(MANUAL_RESOLUTIONS))}"
    c, problem = _conflict(cid, state)
    if c is None:
        return problem
    if c.resolved_seq is not None:
        return f"conflict {cid} was already resolved at entry {c.resolved_seq}"
    if role == PARTY and party not in c.awaiting:
        return f"conflict {cid} awaits {', '.join(sorted(c.awaiting)) or 'nobody'}; {party} may not resolve it"
    return None


def _sent(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    mid = p.get("id")
    if str(mid) in state.messages:
        return f"message {mid} was already sent"
    if not isinstance(p.get("to"), list):
        return f"message {mid} names no recipients"
    if role == SYSTEM:
        if not p.get("template") or "from_party" in p or "settles" in p:
            return f"the service's message {mid} must be an agreed template from no party, settling nothing"
        return None
    settles = p.get("settles")
    if settles is not None:
        if not isinstance(settles, dict):
            return f"message {mid}: settles is not an object"
        for cid in settles.get("conflicts") or ():
            c, problem = _conflict(cid, state)
            problem = problem if c is None else _awaits(c, str(cid), str(party))
            if problem:
                return f"message {mid} settles what is not its party's to settle: {problem}"
    return None


def _message_acknowledged(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    mid = p.get("id")
    to = state.messages.get(str(mid))
    if to is None:
        return None if state.withheld else f"acknowledges message {mid}, which was never sent"
    if party not in to:
        return f"message {mid} is addressed to {', '.join(sorted(to))}, not {party}"
    return None


def _escalated(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    mid = p.get("id")
    if str(mid) not in state.messages and not state.withheld:
        return f"escalates message {mid}, which was never sent"
    return None


_CHECKS: dict[EntryType, Check] = {
    EntryType.MECHANISM_DECLARED: _declared,
    EntryType.KEY_REGISTERED: check_key_registered,
    EntryType.KEY_REVOKED: check_key_revoked,
    EntryType.MEMBER_ADDED: _member_added,
    EntryType.ACTIVITY_NOTIFIED: _notified,
    EntryType.ACTIVITY_AMENDED: _activity_known,
    EntryType.ACTIVITY_CANCELLED: _activity_known,
    EntryType.ZONE_DECLARED: _zone_declared,
    EntryType.ZONE_WITHDRAWN: _zone_withdrawn,
    EntryType.CONFLICT_DETECTED: _detected,
    EntryType.CONFLICT_ACKNOWLEDGED: _acknowledged,
    EntryType.CONFLICT_RESOLVED: _resolved,
    EntryType.MESSAGE_SENT: _sent,
    EntryType.MESSAGE_ACKNOWLEDGED: _message_acknowledged,
    EntryType.MESSAGE_ESCALATED: _escalated,
}


def apply(doc: dict[str, Any], state: AuthorityState) -> None:
    """Take in what an entry (which passed :func:`check`) binds or opens."""
    kind, seq = doc.get("type"), int(doc.get("seq") or 0)
    if not state.mechanism:
        state.mechanism = str(doc.get("mechanism") or doc.get("mechanism_id") or "")
    if kind not in FOUNDING_TYPES:
        state.founding = False
    if "payload" not in doc:
        state.withheld = True
        return
    p = doc["payload"]
    if not isinstance(p, dict):
        return
    if kind == EntryType.MECHANISM_DECLARED:
        for m in p.get("members", []):
            state.members[str(m.get("id"))] = (str(m.get("party")), str(m.get("role")))
    elif kind == EntryType.MEMBER_ADDED:
        state.members[str(p.get("id"))] = (str(p.get("party")), str(p.get("role")))
    elif kind == EntryType.KEY_REGISTERED:
        state.keys[str(p.get("key_id"))] = (str(p.get("owner")), False, str(p.get("public_key")))
    elif kind == EntryType.KEY_REVOKED:
        kid = str(p.get("key_id"))
        if kid in state.keys:
            owner, _, public = state.keys[kid]
            state.keys[kid] = (owner, True, public)
    elif kind == EntryType.ACTIVITY_NOTIFIED:
        state.activities[str(p.get("id"))] = _party(p.get("party"))
    elif kind == EntryType.ZONE_DECLARED:
        state.zones[str(p.get("id"))] = _party(p.get("owner"))
    elif kind == EntryType.CONFLICT_DETECTED:
        state.conflicts[str(p.get("id"))] = Conflict(seq, parties(p.get("awaiting") or ()))
    elif kind == EntryType.CONFLICT_ACKNOWLEDGED:
        c = state.conflicts.get(str(p.get("id")))
        if c is not None:
            c.acknowledged = parties((*c.acknowledged, p.get("party")))
    elif kind == EntryType.CONFLICT_RESOLVED:
        c = state.conflicts.get(str(p.get("id")))
        if c is not None:
            c.resolved_seq = seq
    elif kind == EntryType.MESSAGE_SENT:
        state.messages[str(p.get("id"))] = parties(p.get("to") or ())
        settles = p.get("settles")
        if isinstance(settles, dict):
            for cid in settles.get("conflicts") or ():
                c = state.conflicts.get(str(cid))
                if c is not None:
                    c.acknowledged = parties((*c.acknowledged, p.get("from_party")))
