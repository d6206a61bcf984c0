"""Who may say what in the record: the authority rules, as data, and one check over a small state.

A signature proves which key signed an entry; these rules say whether its signer had the right to
say it. They hold for the service before it appends (it must never write what verify would refuse)
and for ``deconflict ledger verify`` over a copy of the record, entry by entry.

API (pure: no database, no clock)::

    from deconflict.record.authority import AuthorityState, check, apply, RULES

    state = AuthorityState()
    for doc in entries:                 # entry documents in sequence order
        problem = check(doc, state)     # None, or what is wrong in words (no "entry N:" prefix)
        if problem: ...
        apply(doc, state)               # take in what the entry binds or opens

``doc`` is an entry document: ``seq``, ``actor``, ``type`` and ``payload`` (absent when the copy
withholds it: then only what does not need the payload is checked, and references the state
cannot know any more are let pass). :data:`RULES` is the table, one :class:`Rule` per
:class:`~deconflict.record.chain.EntryType`; :func:`rules_table` renders it for the docs.

Authors: ``system`` (the service on its own account), ``operator`` (whoever runs the service,
declaring the mechanism), and members by role: ``party``, ``facilitator``, ``observer``.
A member speaks only for its own party: the payload field a rule names (``party``, ``owner``,
``from_party``) must be the party of the member who wrote it. The service and the operator speak
for no party, except the operator's founding declarations (a party's first key, the agreed
mechanism's zones) made in the founding block: entry 1 and the declarations (keys, members,
zones) directly after it, before anything else happens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deconflict.record import signing
from deconflict.record.chain import SERVICE, EntryType, canonical

__all__ = [
    "AUTHORS",
    "FOUNDING_TYPES",
    "NEVER_WITHHELD",
    "RULES",
    "registration_message",
    "AuthorityState",
    "Conflict",
    "Rule",
    "apply",
    "check",
    "rules_table",
]

SYSTEM, OPERATOR = "system", "operator"
PARTY, FACILITATOR, OBSERVER = "party", "facilitator", "observer"
AUTHORS = (SYSTEM, OPERATOR, PARTY, FACILITATOR, OBSERVER)
"""Who may author entries: the service itself, its operator, and members by role."""
MEMBERS = frozenset({PARTY, FACILITATOR, OBSERVER})
AUTOMATIC_RESOLUTIONS = frozenset({"amended", "cancelled", "withdrawn", "cleared"})
"""How the service itself closes a conflict (an activity amended or cancelled, a zone withdrawn, tracks apart)."""
MANUAL_RESOLUTIONS = frozenset({"amended", "accepted", "escalated"})
"""How a member closes a conflict by hand (mirrors ``deconflict.model.MANUAL_RESOLUTIONS``)."""
RESERVED_IDS = frozenset({SYSTEM, OPERATOR, SERVICE})
PURPOSE = "deconflict key registration"
"""The ``purpose`` in what a key registration's signatures sign."""
FOUNDING = "founding"
"""``authorised_by`` of a key the operator registers in the founding block."""


@dataclass(frozen=True)
class Rule:
    """Who may author one entry type, for whom, and what else binds it."""

    authors: frozenset[str]
    """Among :data:`AUTHORS`."""
    speaks_for: str | None
    """The payload field naming the party a member's entry speaks for; it must be the member's party."""
    says: str
    """The rule in words (rendered in docs/record.md)."""
    never_withheld: bool = False
    """The entry binds keys or members: every copy must carry its payload."""


def _r(authors: str, speaks_for: str | None, says: str, *, never_withheld: bool = False) -> Rule:
    return Rule(frozenset(authors.split()), speaks_for, says, never_withheld)


RULES: dict[EntryType, Rule] = {
    EntryType.MECHANISM_DECLARED: _r(
        "operator", None, "entry 1 only, once: the members, the rules and the service's key", never_withheld=True
    ),
    EntryType.KEY_REGISTERED: _r(
        "operator party facilitator observer",
        "owner",
        "a member for its own party, authorised by its key in force (authorised_by, authorisation); the "
        "operator only for a party with no key in force: in the founding block (authorised_by founding) or "
        "after (operator); proof of possession (possession: the new key's signature) required except for a "
        "founding key; key id = fingerprint of the key; never the service's",
        never_withheld=True,
    ),
    EntryType.KEY_REVOKED: _r(
        "operator party facilitator observer",
        None,
        "a registered key not yet revoked, by the operator or a member of the key's party; never the service's",
        never_withheld=True,
    ),
    EntryType.MEMBER_ADDED: _r(
        "operator", None, "a new member id: ids, parties and roles never change once declared", never_withheld=True
    ),
    EntryType.ACTIVITY_NOTIFIED: _r("party", "party", "a party's member, for its own party; a new activity id"),
    EntryType.ACTIVITY_AMENDED: _r("party", "party", "a member of the activity's party"),
    EntryType.ACTIVITY_CANCELLED: _r("party", "party", "a member of the activity's party"),
    EntryType.ZONE_DECLARED: _r(
        "party operator", "owner", "a party's member for its own party; the operator only in the founding block"
    ),
    EntryType.ZONE_WITHDRAWN: _r("party", None, "a member of the zone's owner"),
    EntryType.CONFLICT_DETECTED: _r("system", None, "the service only; a new conflict id"),
    EntryType.CONFLICT_ACKNOWLEDGED: _r(
        "party facilitator", "party", "a member of a party the open conflict awaits, once, for its own party"
    ),
    EntryType.CONFLICT_RESOLVED: _r(
        "system party facilitator",
        None,
        "the service for an automatic resolution (amended, cancelled, withdrawn, cleared); by hand (amended, "
        "accepted, escalated) a member of a party the conflict awaits, or the facilitator; once",
    ),
    EntryType.MESSAGE_SENT: _r(
        "system party facilitator",
        "from_party",
        "the service in an agreed template, from no party; a member from its own party; what it settles must "
        "await that party",
    ),
    EntryType.MESSAGE_ACKNOWLEDGED: _r(
        "party facilitator observer", "party", "a member of a party the message is addressed to, for its own party"
    ),
    EntryType.MESSAGE_ESCALATED: _r("system", None, "the service only"),
}
"""The authority table: one rule per entry type."""

NEVER_WITHHELD = frozenset(t for t, r in RULES.items() if r.never_withheld)
"""Entry types a copy may never withhold the payload of."""
FOUNDING_TYPES = frozenset(
    {EntryType.MECHANISM_DECLARED, EntryType.KEY_REGISTERED, EntryType.MEMBER_ADDED, EntryType.ZONE_DECLARED}
)
"""The founding block is entry 1 and the entries of these types directly after it."""


@dataclass
class Conflict:
    """What the rules need to know of a detected conflict."""

    seq: int
    awaiting: frozenset[str]
    acknowledged: set[str] = field(default_factory=set)
    resolved_seq: int | None = None


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
    if not isinstance(sk, dict) or not _fingerprint_ok(sk.get("key_id"), sk.get("public_key")):
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


def _fingerprint_ok(key_id: Any, public_key: Any) -> bool:
    try:
        return isinstance(public_key, str) and signing.key_id(public_key) == key_id
    except Exception:  # noqa: BLE001 - an unreadable key is simply not a key
        return False


def _key_registered(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    kid, owner = p.get("key_id"), p.get("owner")
    if owner == SERVICE or owner not in state.parties():
        return f"key {kid} is registered for {owner!r}, which is no party of the mechanism"
    if not _fingerprint_ok(kid, p.get("public_key")):
        return f"key {kid} is registered with a public key whose fingerprint is not {kid}"
    if kid in state.keys:
        return f"key {kid} was already registered (a key is registered once)"
    if role == OPERATOR and state.in_force(str(owner)):
        return (
            f"the operator registers a key for {owner}, which has a key in force; only {owner}'s own member "
            "(signing with its current key) may add one"
        )
    message = registration_message(mechanism=state.mechanism, party=str(owner), public_key=str(p["public_key"]))
    by, possession = p.get("authorised_by"), p.get("possession")
    if possession is None and by != FOUNDING:
        return f"key {kid} is registered without proof of possession (a signature by the new key)"
    if possession is not None and not signing.verify(str(p["public_key"]), message, possession):
        return f"key {kid}: its proof of possession does not verify with the key registered"
    if role == OPERATOR:
        expected = FOUNDING if state.founding else OPERATOR
        if by != expected:
            return f"key {kid} registered by the operator says authorised_by {by!r}; here it can only be {expected!r}"
        return None
    key = state.keys.get(str(by))
    if key is None or key[0] != owner or key[1]:
        return f"key {kid} is authorised by {by!r}, which is no key of {owner} in force"
    if not signing.verify(key[2], message, p.get("authorisation")):
        return f"key {kid}: its authorisation by key {by} does not verify"
    return None


def registration_message(*, mechanism: str, party: str, public_key: str) -> bytes:
    """What a key registration's proof of possession and authorisation sign (the service writes the same)."""
    return canonical({"mechanism": mechanism, "party": party, "public_key": public_key, "purpose": PURPOSE})


def _key_revoked(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    kid = p.get("key_id")
    key = state.keys.get(str(kid))
    if key is None:
        return f"revokes key {kid}, which the record never registered"
    owner, revoked, _ = key
    if revoked:
        return f"revokes key {kid}, which was already revoked"
    if role != OPERATOR and party != owner:
        return f"a member of {party} revokes key {kid} of {owner}; a party revokes only its own keys"
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
    return None


def _activity(p: dict[str, Any], role: str, party: str | None, state: AuthorityState) -> str | None:
    aid = p.get("id")
    known = state.activities.get(str(aid))
    if known is not None and known != party:
        return f"activity {aid} belongs to {known}, not to {party}"
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
    EntryType.KEY_REGISTERED: _key_registered,
    EntryType.KEY_REVOKED: _key_revoked,
    EntryType.MEMBER_ADDED: _member_added,
    EntryType.ACTIVITY_NOTIFIED: _activity,
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
        state.activities[str(p.get("id"))] = str(p.get("party"))
    elif kind == EntryType.ZONE_DECLARED:
        state.zones[str(p.get("id"))] = str(p.get("owner"))
    elif kind == EntryType.CONFLICT_DETECTED:
        state.conflicts[str(p.get("id"))] = Conflict(seq, frozenset(map(str, p.get("awaiting") or ())))
    elif kind == EntryType.CONFLICT_ACKNOWLEDGED:
        c = state.conflicts.get(str(p.get("id")))
        if c is not None:
            c.acknowledged.add(str(p.get("party")))
    elif kind == EntryType.CONFLICT_RESOLVED:
        c = state.conflicts.get(str(p.get("id")))
        if c is not None:
            c.resolved_seq = seq
    elif kind == EntryType.MESSAGE_SENT:
        state.messages[str(p.get("id"))] = frozenset(map(str, p.get("to") or ()))
        settles = p.get("settles")
        if isinstance(settles, dict):
            for cid in settles.get("conflicts") or ():
                c = state.conflicts.get(str(cid))
                if c is not None:
                    c.acknowledged.add(str(p.get("from_party")))


def rules_table() -> str:
    """The authority table as Markdown (docs/record.md shows it)."""
    rows = ["| entry type | who may write it | speaks for (payload field) | rule |", "|---|---|---|---|"]
    for kind, rule in RULES.items():
        who = ", ".join(a for a in AUTHORS if a in rule.authors)
        withheld = " Never withheld." if rule.never_withheld else ""
        rows.append(f"| `{kind.value}` | {who} | {rule.speaks_for or '—'} | {rule.says}.{withheld} |")
    return "\n".join(rows)
