"""What a hotline message is: its type, whether it must be acknowledged, the languages, and a message as read.

The vocabulary the rest of the hotline shares: :class:`MessageType` and :data:`NEEDS_ACK`,
the member languages (:data:`LANGUAGES`, right-to-left ones in :data:`RTL_LANGUAGES`), a
standard message of the catalogue (:class:`Template`) and a message as one reader sees it
(:class:`Rendered`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "ACK_PHRASES",
    "LANGUAGES",
    "NEEDS_ACK",
    "RTL_LANGUAGES",
    "MessageType",
    "Rendered",
    "Template",
    "is_rtl",
    "needs_ack",
]


class MessageType(StrEnum):
    """What a hotline message is for; the values are stored in ``message.sent`` entries."""

    NOTICE = "notice"
    QUERY = "query"
    ALERT = "alert"
    RESPONSE = "response"
    INCIDENT = "incident"
    LINE_CHECK = "line_check"
    FREE_TEXT = "free_text"


NEEDS_ACK: frozenset[MessageType] = frozenset(
    {MessageType.ALERT, MessageType.QUERY, MessageType.INCIDENT, MessageType.LINE_CHECK}
)
"""Message types the reader must acknowledge before the deadline; the others need no answer."""

ACK_PHRASES = frozenset({"acknowledged", "acknowledged_amending", "holding", "proceeding_as_notified"})
"""Standard responses that acknowledge what their ``ref`` names, when the sender's party is awaited (the
service settles with them; a party's client and the page sign no other message that settles anything)."""

LANGUAGES: tuple[str, ...] = ("en", "tr", "he", "ar", "ru")
"""Languages every standard message has agreed wording in."""

RTL_LANGUAGES: frozenset[str] = frozenset({"he", "ar"})
"""Languages written right to left."""


def needs_ack(message_type: MessageType | str) -> bool:
    """Whether a message of this type must be acknowledged.

    >>> needs_ack("alert"), needs_ack("response")
    (True, False)
    """
    return MessageType(message_type) in NEEDS_ACK


def is_rtl(lang: str) -> bool:
    """Whether a language is written right to left (Hebrew and Arabic).

    >>> is_rtl("he"), is_rtl("ar"), is_rtl("tr")
    (True, True, False)
    """
    return lang in RTL_LANGUAGES


@dataclass(frozen=True)
class Template:
    """A standard message: its type, whether it needs an acknowledgement, its parameters and wording."""

    id: str
    type: MessageType
    needs_ack: bool
    params: tuple[str, ...]
    text: Mapping[str, str] = field(hash=False)
    """Wording by language code, with ``{param}`` placeholders."""


@dataclass(frozen=True)
class Rendered:
    """A message as one reader sees it.

    ``text`` is in logical order; ``display`` is the same text with every parameter
    value wrapped in Unicode directional isolates (U+2068 … U+2069) when the language
    is right to left, so that dates, refs and numbers inside Hebrew or Arabic keep
    their left-to-right order on screen (``2025-04-09`` never shows as ``09-04-2025``).
    Free text is the sender's own words, kept as written with its language and never
    machine-translated; readers are shown that it is free text.
    """

    text: str
    lang: str
    rtl: bool
    template: str | None
    params: Mapping[str, str] = field(hash=False)
    """Parameter values as formatted into the text (the same strings in every language)."""
    type: MessageType
    needs_ack: bool
    free_text: bool = False
    display: str = ""
