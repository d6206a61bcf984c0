"""The authority table, as data: who may write each entry type, for which party, and what else binds it.

One :class:`Rule` per :class:`~deconflict.record.chain.EntryType` in :data:`RULES`, rendered for
docs/record.md by :func:`rules_table`; :mod:`deconflict.record.authority` checks entries against it.

Authors: ``system`` (the service on its own account), ``operator`` (whoever runs the service,
declaring the mechanism), and members by role: ``party``, ``facilitator``, ``observer``.
"""

from __future__ import annotations

from dataclasses import dataclass

from deconflict.record.chain import EntryType

__all__ = [
    "AUTHORS",
    "FACILITATOR",
    "FOUNDING_TYPES",
    "MEMBERS",
    "NEVER_WITHHELD",
    "OBSERVER",
    "OPERATOR",
    "PARTY",
    "RULES",
    "SYSTEM",
    "Rule",
    "rules_table",
]

SYSTEM, OPERATOR = "system", "operator"
PARTY, FACILITATOR, OBSERVER = "party", "facilitator", "observer"
AUTHORS = (SYSTEM, OPERATOR, PARTY, FACILITATOR, OBSERVER)
"""Who may author entries: the service itself, its operator, and members by role."""
MEMBERS = frozenset({PARTY, FACILITATOR, OBSERVER})
"""The roles a member may have."""


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
        "after (operator); proof of possession (possession: the new key's signature) always required, founding "
        "keys too; key id = fingerprint of the key; never the service's",
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
        "party facilitator",
        "party",
        "a member of a party the message is addressed to, for its own party; never an observer (it only reads)",
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


def rules_table() -> str:
    """The authority table as Markdown (docs/record.md shows it)."""
    rows = ["| entry type | who may write it | speaks for (payload field) | rule |", "|---|---|---|---|"]
    for kind, rule in RULES.items():
        who = ", ".join(a for a in AUTHORS if a in rule.authors)
        withheld = " Never withheld." if rule.never_withheld else ""
        rows.append(f"| `{kind.value}` | {who} | {rule.speaks_for or '—'} | {rule.says}.{withheld} |")
    return "\n".join(rows)
