"""The 24/7 hotline from a terminal, on a running service: ``hotline send`` (a standard message or free
text), ``hotline ack`` and ``hotline tail`` (the channel in your language, then each message as it comes)."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import httpx
import typer

from deconflict.cli.common import say, user_errors, utc_text
from deconflict.cli.remote import KeyOpt, TokenOpt, UrlOpt, client_for, message_text
from deconflict.errors import DeconflictError

__all__ = ["hotline_app"]

hotline_app = typer.Typer(help="The 24/7 hotline from a terminal (talks to a running service).", no_args_is_help=True)


@hotline_app.command("send")
@user_errors
def hotline_send(
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
    template: Annotated[str | None, typer.Option(help="Standard message, e.g. holding, acknowledged_amending.")] = None,
    param: Annotated[list[str] | None, typer.Option(help="A template parameter as name=value (repeat).")] = None,
    text: Annotated[str | None, typer.Option(help="Free text instead of a standard message.")] = None,
    lang: Annotated[
        str | None,
        typer.Option(help="The language the free text is written in: en, tr, he, ar or ru (default: yours)."),
    ] = None,
    to: Annotated[
        list[str] | None,
        typer.Option(
            help="A recipient party code (repeat; default: all who answer, and for a phrase about a conflict, "
            "a message or an activity those who may see it)."
        ),
    ] = None,
    about: Annotated[
        str | None,
        typer.Option(
            help="What it is about, as kind:id (activity:TR-0003, conflict:C1, zone:IL-RL-PALMYRA, message:M4); "
            "C1 or M4 alone name a conflict or a message."
        ),
    ] = None,
    key: KeyOpt = None,
) -> None:
    """Send a standard message (agreed wording, read by each member in its own language) or free text,
    which every member reads as written, labelled with its language (--lang; default: your member's).

    Example: deconflict hotline send --token $TR --template holding --param ref=C1
    (free text: deconflict hotline send --text "Call us on the secure line." --lang en --to IL)
    """
    from deconflict.hotline import LANGUAGES

    params: dict[str, str] = {}
    for item in param or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise DeconflictError(f"--param {item!r}: give name=value")
        params[name] = _param_value(value)
    if lang is not None and lang not in LANGUAGES:
        raise DeconflictError(f"--lang: {lang!r} is not a hotline language; give one of {', '.join(LANGUAGES)}")
    if lang is not None and text is None:
        raise DeconflictError(
            "--lang: only free text (--text) carries a language; standard messages are worded for each reader"
        )
    client = client_for(url, token, key)
    assumed = text is not None and lang is None
    if assumed:
        lang = client.language or None
    body = {
        "template": template,
        "params": params or None,
        "text": text,
        "lang": lang,
        "to": to or None,
        "about": _about(about) if about is not None else None,
    }
    sent = client.send_message(**{k: v for k, v in body.items() if v is not None})
    if assumed:  # once sent: a refused message was not "sent as written"
        typer.echo(
            f"note: free text sent as written in {lang} (your member's language); if it is in another, "
            "say so with --lang, e.g. --lang en",
            err=True,
        )
    say(message_text(sent))


ABOUT_KINDS = ("activity", "conflict", "zone", "message")


def _about(given: str) -> dict[str, str]:
    """``--about`` as the API's ``about``: kind:id, or a conflict's or a message's id alone (C1, M4)."""
    kind, sep, ref = given.partition(":")
    if not sep:
        kind, ref = {"C": "conflict", "M": "message"}.get(given[:1], ""), given
        if not kind or not given[1:].isdigit():
            raise DeconflictError(
                f"--about {given!r}: give kind:id, e.g. activity:TR-0003 or zone:IL-RL-PALMYRA (C1 or M4 alone "
                "name a conflict or a message)"
            )
    if kind not in ABOUT_KINDS or not ref:
        raise DeconflictError(f"--about {given!r}: the kind is one of {', '.join(ABOUT_KINDS)}, then :id")
    return {"kind": kind, "id": ref}


def _param_value(value: str) -> str:
    """A template parameter as typed; a time such as 2026-12-02T20:33:00Z is given as the wording expects it
    (UTC without the Z, since the agreed wording already says UTC)."""
    from datetime import datetime

    from deconflict.hotline import format_time

    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return value
    return format_time(parsed) if parsed.tzinfo is not None else value


@hotline_app.command("ack")
@user_errors
def hotline_ack(
    message: Annotated[str, typer.Argument(help="Message id, e.g. M7.")],
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
    key: KeyOpt = None,
) -> None:
    """Acknowledge a message addressed to your party (this stops its escalation).

    Example: deconflict hotline ack M7 --token $TR
    """
    say(message_text(client_for(url, token, key).acknowledge_message(message)))


TAIL_PAGE = 500
"""Messages ``hotline tail --no-follow`` asks for at a time (``GET .../messages``' default page)."""
RECONNECT_S = 1.0
"""How long ``hotline tail`` waits before connecting again to a stream that ended (doubled each failed try)."""
RECONNECT_MAX_S = 8.0
"""The longest wait between two tries."""
RETRY_AFTER_MAX_S = 60.0
"""The longest ``Retry-After`` (a 429: the member's streams all taken, or a 503) the tail waits before trying again."""
TAIL_EVENTS = (
    "message.sent",
    "message.escalated",
    "message.acknowledged",
    "conflict.acknowledged",
    "conflict.resolved",
)
"""Record entries the live tail words: messages, and the conflict entries that settle or close their alerts."""


@hotline_app.command("tail")
@user_errors
def hotline_tail(
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
    after: Annotated[int, typer.Option(min=0, help="Start after this record sequence number (0: everything).")] = 0,
    follow: Annotated[bool, typer.Option(help="Keep listening for new messages.")] = True,
) -> None:
    """Print the channel in your language, then each new message and escalation as it happens.

    Example: deconflict hotline tail --token $IL
    """
    from deconflict.client import raise_for

    client = client_for(url, token)
    path = f"/mechanisms/{client.mechanism}"
    if not follow:  # the whole channel after ``after``, page by page (a page is short only at its end)
        while True:
            r = client.http.get(f"{path}/messages", params={"after": after, "limit": TAIL_PAGE})
            raise_for(r)
            page = sorted(r.json(), key=lambda m: m.get("seq", 0))
            for m in page:
                say(message_text(m))
            if len(page) < TAIL_PAGE:
                return
            after = page[-1]["seq"]
    # Following: when the stream ends (the service restarted, or the connection dropped), say so on stderr and
    # connect again from the last entry printed, as the page does; a refusal (a revoked token) ends the tail.
    connected, wait, said = False, RECONNECT_S, ""
    position: list[Any] = [after, None]  # the last entry the stream carried and its hash, however the stream ends
    while True:
        after, held = position
        # with the hash of the entry it goes on from, the service can say when its record there is another one
        # (restored from a backup and written over while the tail was away)
        headers = {"Last-Event-Hash": held} if held else {}
        try:
            with client.http.stream(
                "GET", f"{path}/events", params={"after": after}, headers=headers, timeout=None
            ) as r:
                if connected and (r.status_code >= 500 or r.status_code == 429):  # busy, or not back yet
                    why = f"the service answered {r.status_code}"
                    asked = r.headers.get("Retry-After", "")
                    wait = max(wait, min(float(asked), RETRY_AFTER_MAX_S)) if asked.isdigit() else wait
                else:
                    raise_for(r)
                    if said:
                        typer.echo(f"reconnected; going on after entry {after}", err=True)
                    connected, wait, said = True, RECONNECT_S, ""
                    _print_events(r, position)
                    why = "the service closed the stream"
        except httpx.TransportError as e:
            if not connected:
                raise
            why = f"the connection was lost: {e}" if str(e) else "the connection was lost"
        if why != said:  # once an outage, and again when its reason changes
            said = why
            typer.echo(f"{why}; connecting again from entry {position[0]} (Ctrl-C to stop)", err=True)
        time.sleep(wait)
        wait = min(wait * 2, RECONNECT_MAX_S)


def _print_events(r: httpx.Response, position: list[Any]) -> None:
    """Print each entry of an open event stream as :func:`hotline_tail` words it, until the stream ends;
    ``position`` follows the sequence number and hash of the last entry dealt with (where to go on from): it
    moves once the entry's data has been read and printed, so an entry cut off by a dropped connection is read
    again."""
    event, seq = "", None
    for line in r.iter_lines():
        if line.startswith("id:"):
            try:
                seq = int(line[3:].strip())
            except ValueError:
                seq = None
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            try:
                data = json.loads(line[5:])
            except ValueError:
                return  # a line cut short: the stream ended in the middle of an entry, read it again
            _print_entry(event, data)
            if seq is not None:
                digest = data.get("hash") if isinstance(data, dict) else None
                position[:], seq = [seq, digest if isinstance(digest, str) else None], None


def _print_entry(event: str, entry: Any) -> None:
    """One event of the stream, worded for the tail (nothing for the events it does not word)."""
    if event == "rewound":
        if entry.get("differs"):
            say(
                f"the record's entry {entry['asked']} is not the one shown here: the service's record was restored "
                "from a backup, or failed over, and written over since; what was shown may not be in it "
                "(hotline tail --no-follow prints it as it is); going on from there"
            )
        else:
            say(
                f"the record now ends at entry {entry['head']}, before entry {entry['asked']}: what was shown after "
                "it is not in the service's record (restored from a backup, or failed over); going on from there"
            )
        return
    if event not in TAIL_EVENTS:
        return
    if "message" in entry:
        say(message_text(entry["message"]))
        return
    p, at = entry.get("payload"), utc_text(entry.get("at"))
    if not isinstance(p, dict):
        return  # withheld from this member's copy
    if event == "message.escalated":
        say(f"{at}  {p['id']}  ESCALATED to {p['name']}")
    elif event == "message.acknowledged":
        say(f"{at}  {p['id']}  acknowledged by {p['party']}")
    elif event == "conflict.acknowledged":  # one acknowledgement settles the conflict and its alerts
        for mid in p.get("messages") or []:
            say(f"{at}  {mid}  acknowledged by {p['party']} (with conflict {p['id']})")
    elif event == "conflict.resolved":
        for mid in p.get("messages") or []:
            say(f"{at}  {mid}  closed: conflict {p['id']} {p.get('resolution', 'resolved')}")
