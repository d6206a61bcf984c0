"""How a command reaches a running service, and how it words what comes back: the options (address,
token, the party's key), the client, and one line per conflict, outcome and hotline message.

The commands themselves live in ``activities``, ``conflicts`` and ``hotline``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deconflict.cli.common import safe_text, utc_text
from deconflict.clock import parse_utc
from deconflict.errors import DeconflictError

if TYPE_CHECKING:
    from deconflict.client import Client

__all__ = [
    "KeyOpt",
    "TokenOpt",
    "UrlOpt",
    "client_for",
    "conflict_line",
    "message_text",
    "outcome_lines",
    "own_activity",
    "signed_by",
]

UrlOpt = Annotated[str, typer.Option(help="The service's address.", envvar="DECONFLICT_URL")]
TokenOpt = Annotated[str, typer.Option(help="Your bearer token (or set DECONFLICT_TOKEN).", envvar="DECONFLICT_TOKEN")]
KeyOpt = Annotated[Path | None, typer.Option(help="Your party's private key file: sign on your side.")]


def client_for(url: str, token: str, key: Path | None = None) -> Client:
    """A client of the running service for the token's member; signing on this side with ``key``."""
    token = token.strip()
    if not token:
        raise DeconflictError("no token: give --token or set DECONFLICT_TOKEN (the service prints one per member)")
    odd = next((ch for ch in token if not (ch.isascii() and ch.isprintable()) or ch.isspace()), None)
    if odd is not None:  # a no-break space or a typographic quote from a chat or a PDF: not in any token
        raise DeconflictError(
            f"--token: holds {_named(odd)}, which no token has; copy it again as the service printed it "
            "(dcf_ then letters, digits, - and _)"
        )
    import httpx

    from deconflict.client import Client
    from deconflict.record import signing

    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as e:
        raise DeconflictError(f"--url: {url!r} is not an address ({e}); e.g. http://127.0.0.1:8080") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise DeconflictError(f"--url: {url!r} is not an http(s) address with a host; e.g. http://127.0.0.1:8080")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise DeconflictError(f"--url: {url!r} is not an address (its port {parsed.port} is not 1 to 65535)")
    return Client(url.strip(), token, key=signing.read_key_file(key)[1] if key is not None else None)


def _named(ch: str) -> str:
    """A character as a duty officer can tell which it is: its Unicode name and number."""
    import unicodedata

    return f"{unicodedata.name(ch, 'a character').lower()} (U+{ord(ch):04X})"


def signed_by(client: Client) -> str:
    """', signed with <key id>' when the client signs on this side, else nothing."""
    return f", signed with {client.key_id}" if client.key is not None else ""


def own_activity(client: Client, activity_id: str, *, version: int | None = None) -> dict[str, Any]:
    """The current version of one of the member's own activities, with clear words when it is not.

    Args:
        version: the version the member looked at (``--version``), if it said; it must still be current.

    Raises:
        DeconflictError: not visible, another party's, no longer changeable, or changed since ``version``.
    """
    from deconflict.client import ClientError

    try:
        current: dict[str, Any] = client.activity(activity_id)
    except ClientError as e:
        if e.status == 404:
            raise DeconflictError(
                f"{activity_id}: no activity with this id is visible to you ('deconflict activities' lists them)",
                field="activity",
            ) from None
        raise
    if current.get("partial") or current.get("party") != client.party:
        raise DeconflictError(
            f"{activity_id} belongs to {current.get('party')}; only {current.get('party')} can change it",
            field="activity",
        )
    if current.get("state") not in ("notified", "acknowledged", "active"):
        raise DeconflictError(f"{activity_id} is {current.get('state')}; it can no longer change", field="activity")
    if version is not None and version != int(current["version"]):
        raise DeconflictError(_stale_version(activity_id, version, current), field="--version")
    return current


def _stale_version(activity_id: str, version: int, current: dict[str, Any]) -> str:
    """Why ``--version`` no longer matches the activity's current version, and what to do."""
    seen = int(current["version"])
    if version > seen:
        return f"--version: {activity_id} has no version {version}; it is at version {seen}"
    return (
        f"--version: you looked at version {version}, but {activity_id} is now at version {seen} "
        f"(changed {utc_text(current.get('notified_at'))}); look again with 'deconflict activities'"
    )


def conflict_line(c: dict[str, Any], now: str = "") -> str:
    """One conflict in a line: id, kind, what, status, who must still acknowledge and by when; with the
    service's ``now``, a deadline passed says so and by how long (the ladder is climbing)."""
    kind = str(c.get("kind", "")).replace("_", " ")
    what = [str(c[k]) for k in ("activity", "other_activity") if c.get(k)]
    subject = " and ".join(what)
    if c.get("zone"):
        subject += f" in zone {c['zone']}"
    if c.get("kind") == "separation" and c.get("distance_m") is not None and c.get("separation_m"):
        apart = float(c["distance_m"])
        subject += ", overlapping" if apart == 0 else f", {apart / 1000:.1f} km apart"
        subject += f" (separation {float(c['separation_m']) / 1000:.2f} km)"
    status = str(c.get("status", ""))
    if status == "resolved":
        status = f"resolved ({c.get('resolution')})"
    waiting = [p for p in c.get("awaiting") or [] if p not in (c.get("acknowledged") or {})]
    tail = f", awaiting {', '.join(waiting)}, acknowledge by {utc_text(c.get('deadline'))}" if waiting else ""
    if waiting and now and c.get("deadline"):
        late = parse_utc(now, field="now") - parse_utc(str(c["deadline"]), field="deadline")
        if late.total_seconds() >= 0:  # under a minute in seconds ("by 0 min" read as not overdue at all)
            s = int(late.total_seconds())
            tail += f", OVERDUE by {s // 60} min" if s >= 60 else f", OVERDUE by {s} s"
    if c.get("status") == "resolved":
        tail = ""
    lost = [
        f"{x.get('track')} (last report {utc_text(x['last_report'])})" if x.get("last_report") else str(x.get("track"))
        for x in c.get("contact_lost") or []
    ]
    if lost:  # open, but the prediction is no longer fed: nothing says the aircraft parted
        tail += f"; contact lost with {', '.join(lost)}"
    return safe_text(f"{c.get('id')}  {kind}  {subject}  {status}{tail}")


def outcome_lines(out: dict[str, Any], why: str) -> list[str]:
    """The conflicts a change closed (``why``) and those it raised, one indented line each."""
    lines = [f"  conflict {cid} closed ({why})" for cid in out.get("resolved") or []]
    for c in out.get("raised") or []:
        lines.append(f"  new conflict {conflict_line({**c, 'status': c.get('status', 'open')})}")
    return lines


def message_text(message: dict[str, Any]) -> str:
    """A hotline message as two lines: when, id, kind, sender, recipients and acknowledgement; its text."""
    ack = ""
    if message.get("needs_ack"):
        # each addressee's answer, and who is still awaited: to two parties, one answering in time is not the
        # other's late answer
        by = message.get("acknowledged") or {}
        said = [f"acknowledged by {p} {utc_text(a.get('at'))}" for p, a in sorted(by.items()) if isinstance(a, dict)]
        waiting = [p for p in message.get("to") or [] if p not in by]
        if message.get("status") == "closed":
            waiting = []
        if waiting:
            said.append(f"ACK BY {utc_text(message.get('deadline'))} from {','.join(waiting)}")
        elif not said and message.get("acknowledged_at"):
            said.append(f"acknowledged {utc_text(message.get('acknowledged_at'))}")
        ack = f"  [{'; '.join(said)}]" if said else ""
    kind = "free text" if message.get("free_text") else message["type"]
    # free text is shown as its sender wrote it, with the language the sender declared (not a translation)
    original = f"  (as written, {message['original']['lang']})" if message.get("free_text") else ""
    head = (
        f"{utc_text(message['sent_at'])}  {message['id']}  {kind} from {message['from']} "
        f"to {','.join(message['to'])}{ack}"
    )
    # what a member wrote cannot drive the terminal: no escape sequence, no forged line, no bidi override;
    # the service's own directional isolates go too (a terminal lays out each line itself)
    text = safe_text(str(message["text"]).replace("\u2068", "").replace("\u2069", ""))
    return f"{safe_text(head)}\n    {text}{safe_text(original)}"
