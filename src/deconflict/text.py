"""Text a person writes into the record (a member's name, a zone's, a title, a reason): what it may hold.

No control character but tab, line feed and carriage return (no NUL, no ESC, none of the C1 controls), and no
bidirectional embedding, override or isolate (U+202A–U+202E, U+2066–U+2069): each can make the text read
otherwise than it was written, on a duty officer's screen or in a terminal. The API's body guard refuses them
in any text of a request (:mod:`deconflict.api.body`); the domain's text fields refuse them whatever the way in
(a command on the database, a mechanism's file), and keep text in Unicode NFC, so that one word has one
spelling in the record.
"""

from __future__ import annotations

__all__ = ["ALLOWED_CONTROLS", "BIDI_CONTROLS", "forbidden_character", "refusal"]

BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
"""Bidirectional embeddings, overrides and isolates: refused in any text a member sends."""
ALLOWED_CONTROLS = frozenset("\t\n\r")
"""Control characters text may hold (a message may have lines)."""


def forbidden_character(text: str) -> str | None:
    """The first character of ``text`` that no member's text may hold (see the module), or None.

    >>> forbidden_character("Palmyra \\u202eartsiS")
    '\\u202e'
    >>> forbidden_character("line one\\nline two") is None
    True
    """
    if text.isprintable():  # the common case, in C: no control and no bidi control at all
        return None
    for ch in text:
        code = ord(ch)
        if (code < 0x20 or 0x7F <= code <= 0x9F) and ch not in ALLOWED_CONTROLS:
            return ch
        if ch in BIDI_CONTROLS:
            return ch
    return None


def refusal(field: str, bad: str) -> str:
    """Why text holding ``bad`` (:func:`forbidden_character`) is refused, naming ``field``.

    >>> refusal("name", "\\x1b")
    'name: holds a control character (U+001B), which could make the text read otherwise than written; remove it'
    """
    kind = "a bidirectional control" if bad in BIDI_CONTROLS else "a control character"
    return f"{field}: holds {kind} (U+{ord(bad):04X}), which could make the text read otherwise than written; remove it"
