"""Conflicts on a running service from a terminal: ``conflicts`` (list those that concern you), ``ack``
(acknowledge a conflict or a hotline message) and ``resolve`` (close one as accepted or escalated)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from deconflict.cli.common import natural_key, say, user_errors, utc_text
from deconflict.cli.remote import KeyOpt, TokenOpt, UrlOpt, client_for, conflict_line, message_text, signed_by
from deconflict.errors import DeconflictError

__all__ = ["RESOLUTIONS", "ack", "conflicts", "resolve"]

RESOLUTIONS = ("accepted", "escalated")
"""How a party may close a conflict by hand (amended is said by amending or cancelling the activity)."""


@user_errors
def conflicts(
    all_: Annotated[bool, typer.Option("--all", help="Also resolved conflicts.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The conflicts as JSON.")] = False,
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
) -> None:
    """The conflicts that concern you on a running service (unresolved ones unless --all): kind, activities,
    status, who must still acknowledge and by when.

    Example: deconflict conflicts --token $IL
    """
    client = client_for(url, token)
    found = sorted(client.conflicts(status=None if all_ else "unresolved"), key=lambda c: natural_key(c["id"]))
    if as_json:
        say(json.dumps(found, ensure_ascii=False, indent=2))
        return
    if not found:
        say("no conflicts" if all_ else "no unresolved conflicts")
    for c in found:
        say(conflict_line(c, client.now))


@user_errors
def ack(
    item: Annotated[str, typer.Argument(help="A conflict id (C7) or a hotline message id (M12).")],
    key: KeyOpt = None,
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
) -> None:
    """Acknowledge a conflict that awaits your party (C7), or a hotline message addressed to it (M12, as
    'hotline ack'). Acknowledging stops the climb up the escalation ladder.

    Example: deconflict ack C2 --token $IL
    """
    import re

    client = client_for(url, token, key)
    if re.fullmatch(r"M\d+", item.strip()):
        say(message_text(client.acknowledge_message(item.strip())))
        return
    c = client.acknowledge_conflict(item.strip())
    when = (c.get("acknowledged") or {}).get(client.party)
    when = when.get("at") if isinstance(when, dict) else when
    at = f" at {utc_text(when)}" if isinstance(when, str) else ""
    say(f"{c['id']} acknowledged by {client.party}{at}{signed_by(client)}")
    say(f"  {conflict_line(c)}")


@user_errors
def resolve(
    conflict: Annotated[str, typer.Argument(help="The conflict's id, e.g. C2.")],
    resolution: Annotated[
        str, typer.Option("--as", help="accepted (both sides live with it) or escalated (to the facilitator).")
    ],
    note: Annotated[str, typer.Option(help="Why, in a few words (recorded; at most 500 characters).")] = "",
    key: KeyOpt = None,
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
) -> None:
    """Close a conflict that concerns your party (or any, as facilitator): accepted or escalated.
    To close it as amended, amend or cancel the activity instead.

    Example: deconflict resolve C2 --as accepted --note "IL holds until 10:00Z" --token $IL
    """
    how = resolution.strip().lower()
    if how not in RESOLUTIONS:
        raise DeconflictError(
            f"--as: {resolution!r} is not a resolution here; give accepted or escalated "
            "(to close it as amended, amend or cancel the activity: 'deconflict amend', 'deconflict cancel')",
            field="--as",
        )
    if len(note) > 500:
        raise DeconflictError(f"--note: {len(note)} characters; keep it to 500", field="--note")
    client = client_for(url, token, key)
    c = client.resolve_conflict(conflict.strip(), resolution=how, note=note)
    say(f"{c['id']} resolved as {c.get('resolution', how)} by {client.party}{signed_by(client)}")
    say(f"  {conflict_line(c)}")
