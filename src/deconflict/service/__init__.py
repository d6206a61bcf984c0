"""The use cases: :class:`Service`, the stable facade the API, the CLI, the demo and the tests call.

Each method forwards to a use-case function of one capability module (``mechanisms``, ``credentials``,
``keys``, ``notices``, ``zones``, ``conflicts``, ``hotline``, ``duty``, ``tracks``, ``record``), which
takes the :class:`~deconflict.service.context.Context` and, for a write, the :class:`SignatureMode` of the
member's entry it appends. A party that holds its own key runs a write twice: prepared
(``SignatureMode(prepare=True)``: :class:`Prepared` carries the entry, unsigned, nothing is written),
then with its signature of that entry's hash (``SignatureMode(signed=...)``, at the prepared instant).

Beside the facade (``facade``): ``context`` (Context, Outcome, SignatureMode), ``picture`` (the live
picture of each mechanism), ``writer`` (one transaction: sign, append, project), ``signers`` (which key
signs), ``queries`` (shared reads), ``posting`` (hotline messages inside a transaction), ``findings``
(detections recorded as conflicts with their alerts).
"""

from __future__ import annotations

from deconflict.disclosure import conflict_public, message_status_view, message_view
from deconflict.service.context import (
    CLOCK_SKEW_S,
    IMMEDIATE,
    LIVE_STATES,
    OPERATOR,
    PREPARED_TTL_S,
    SYSTEM,
    Outcome,
    Prepared,
    SignatureMode,
    Signed,
)
from deconflict.service.credentials import TOKEN_CACHE_S, TOKEN_PREFIX
from deconflict.service.facade import Service
from deconflict.service.hotline import ACK_PHRASES, MEMBER_PHRASES
from deconflict.service.picture import FRESHNESS_S
from deconflict.service.queries import TACTICAL_KINDS
from deconflict.service.record import replay_around_entries, replay_entries

__all__ = [
    "ACK_PHRASES",
    "CLOCK_SKEW_S",
    "FRESHNESS_S",
    "IMMEDIATE",
    "LIVE_STATES",
    "MEMBER_PHRASES",
    "OPERATOR",
    "PREPARED_TTL_S",
    "SYSTEM",
    "TACTICAL_KINDS",
    "TOKEN_CACHE_S",
    "TOKEN_PREFIX",
    "Outcome",
    "Prepared",
    "Service",
    "SignatureMode",
    "Signed",
    "conflict_public",
    "message_status_view",
    "message_view",
    "replay_around_entries",
    "replay_entries",
]
