"""``deconflict tak``: a member's picture pushed to a TAK server as Cursor on Target, kept current.

It reads the picture through the API as the token's member (``GET .../zones``, ``activities``,
``conflicts``, ``tracks``: the disclosure rules are the API's, never bypassed), writes it as CoT
(:mod:`deconflict.formats.cot`) and sends it with pytak's TX worker over TCP (or whatever ``COT_URL``
pytak reads: ``udp://``, ``tls://``, ``file://``). It follows the mechanism's event stream: each record entry
(a notice, an amendment, a conflict raised or resolved, a zone) makes it read the picture again and send
what changed, and what is gone once more as stale (a TAK client then takes it off the map); tracks are
read every ``--tracks-every`` seconds. Everything is sent again every minute, for TAK clients that
join later. When the TAK server or the service drops, it reconnects; Ctrl-C stops it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deconflict.cli.common import safe_text, user_errors
from deconflict.cli.remote import TokenOpt, UrlOpt, client_for
from deconflict.errors import DeconflictError

if TYPE_CHECKING:
    from deconflict.client import Client
    from deconflict.formats.cot import CotEvent

__all__ = ["RESEND_S", "Pusher", "tak"]

RESEND_S = 60.0
"""Everything is sent again this often (TAK clients that join later; zones' stale times renewed)."""
_EPOCH = datetime.fromisoformat("2000-01-01T00:00:00+00:00")


@dataclass
class Pusher:
    """What was sent, by uid, so that only what changed is sent again, and what is gone is withdrawn."""

    client: Client
    mechanism: str
    party: str
    track_stale_s: float
    sent: dict[str, CotEvent] = field(default_factory=dict)
    count: int = 0
    last_full: float = 0.0
    picture: dict[str, Any] = field(default_factory=dict)

    def now(self) -> datetime:
        """The service's clock: the times of the picture are on it."""
        from deconflict.client import raise_for
        from deconflict.clock import parse_utc

        me = self.client.http.get("/me")
        raise_for(me)
        return parse_utc(me.json()["now"], field="now")

    def read(self, *, whole: bool, now: datetime) -> None:
        """The member's picture through the API (only the tracks unless ``whole``): what is in force or to
        come and what ended within :data:`~deconflict.model.LIVE_KEEPS_S` before ``now`` (the service's clock;
        every open conflict, whatever its window), as the page reads it."""
        from deconflict.client import raise_for
        from deconflict.clock import iso
        from deconflict.model import LIVE_KEEPS_S

        base = f"/mechanisms/{self.mechanism}"

        def get(name: str, params: dict[str, str]) -> Any:
            r = self.client.http.get(f"{base}/{name}", params=params)
            raise_for(r)
            return r.json()

        if whole:  # what is in force: a conflict resolved, an activity closed, a zone withdrawn drop out
            since = iso(now - timedelta(seconds=LIVE_KEEPS_S))
            self.picture["zones"] = get("zones", {})
            self.picture["activities"] = get("activities", {"start": since})
            open_ = get("conflicts", {"status": "open"})  # first: one acknowledged meanwhile is in the next
            acknowledged = get("conflicts", {"status": "acknowledged", "start": since})
            later = {c["id"] for c in acknowledged}
            open_ = [c for c in open_ if c["id"] not in later]
            self.picture["conflicts"] = sorted(open_ + acknowledged, key=lambda c: (c["detected_at"], c["id"]))
        self.picture["tracks"] = get("tracks", {})["tracks"]

    def changes(self, *, whole: bool, resend: bool = False) -> tuple[list[CotEvent], list[CotEvent]]:
        """The events to send now: new or changed ones (all of them when ``resend``; tracks always), and
        those no longer in the picture, withdrawn (tracks always; the rest when the whole picture was
        read); and of those, what is new, changed or withdrawn (to say so)."""
        from deconflict.formats.cot import picture_events, withdrawn

        now = self.now()
        self.read(whole=whole, now=now)
        doc = {**self.picture, "track_stale_s": self.track_stale_s}
        events = picture_events(doc, mechanism=self.mechanism, reader_party=self.party, now=now)
        out, news = [], []
        current = {e.uid for e in events}
        for e in events:
            before = self.sent.get(e.uid)
            new = before is None or _content(before) != _content(e)
            if resend or new or e.type.startswith("a-"):
                out.append(e)
            if new:
                news.append(e)
        for uid, e in list(self.sent.items()):
            if uid not in current and (whole or ".track." in uid):
                gone = withdrawn(e, now)
                out.append(gone)
                news.append(gone)
                del self.sent[uid]
        for e in events:
            self.sent[e.uid] = e
        self.count += len(out)
        return out, news


def _content(e: CotEvent) -> CotEvent:
    """An event without its times of writing (and stale, renewed by every resend)."""
    return replace(e, time=_EPOCH, start=_EPOCH, stale=_EPOCH)


def _follow_stream(url: str, token: str, wake: Callable[[], None], stop: threading.Event) -> None:
    """Wake the pusher at each record entry on the member's event stream; reconnect when it ends."""
    after, backoff = 0, 1.0
    while not stop.is_set():
        try:
            stream = client_for(url, token)
            for name, data in stream.events(after, read_timeout_s=60):
                if name != "checkpoint" and isinstance(data, dict) and isinstance(data.get("seq"), int):
                    after = data["seq"]
                    wake()
                backoff = 1.0
                if stop.is_set():
                    return
        except Exception as e:  # the service went away: try again
            typer.echo(f"warning: event stream: {safe_text(str(e))}; reconnecting in {backoff:g} s", err=True)
        stop.wait(backoff)
        backoff = min(10.0, backoff * 2)


async def _in_thread(fn: Callable[..., Any], /, **kwargs: Any) -> Any:
    """``fn(**kwargs)`` in a daemon thread of its own, awaited.

    Not ``asyncio.to_thread``: ``asyncio.run`` joins the default pool's threads when it ends, so a Ctrl-C
    during a read of a service that does not answer would wait for the HTTP timeout (15 s a request). A
    daemon thread is left behind instead, and the process stops at once.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():  # cancelled: Ctrl-C, nobody waits for it any more
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def run() -> None:
        try:
            result, error = fn(**kwargs), None
        except Exception as e:
            result, error = None, e
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: the feed stopped meanwhile
            pass

    threading.Thread(target=run, name="deconflict-tak-read", daemon=True).start()
    return await done


async def _push(pusher: Pusher, cot_url: str, *, once: bool, tracks_every: float, url: str, token: str) -> None:
    """Connect to the TAK server with pytak and keep sending; reconnect when it drops."""
    from configparser import ConfigParser

    from deconflict.formats.cot import _pytak, to_xml

    pytak = _pytak()
    config = ConfigParser(interpolation=None)
    # pytak's own settings from the environment: PYTAK_TLS_CLIENT_CERT, PYTAK_TLS_CLIENT_KEY... for tls://
    config["deconflict"] = {k: v for k, v in os.environ.items() if k.startswith("PYTAK_")} | {"COT_URL": cot_url}
    section = config["deconflict"]
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    stop = threading.Event()
    if not once:
        args = (url, token, lambda: loop.call_soon_threadsafe(woken.set), stop)
        threading.Thread(target=_follow_stream, args=args, daemon=True).start()
    backoff = 1.0
    try:
        while True:
            try:
                reader, writer = await pytak.protocol_factory(section)
            except OSError as e:
                if once:
                    raise DeconflictError(f"--tak: cannot reach {cot_url} ({e.strerror or e})") from None
                typer.echo(f"warning: cannot reach {cot_url} ({e.strerror or e}); trying in {backoff:g} s", err=True)
                await asyncio.sleep(backoff)
                backoff = min(10.0, backoff * 2)
                continue
            backoff = 1.0
            queue: asyncio.Queue[bytes] = asyncio.Queue()
            tx = asyncio.create_task(pytak.TXWorker(queue, section, writer).run())
            rx = asyncio.create_task(_discard(reader))
            pusher.sent.clear()  # a new connection gets the whole picture
            if not cot_url.startswith("file:"):  # a TAK server takes a client's first event as who it is
                queue.put_nowait(pytak.hello_event(f"deconflict.{pusher.mechanism}.{pusher.client.member}"))
            whole, resend = True, True
            while not tx.done() and not rx.done():
                try:
                    events, news = await _in_thread(pusher.changes, whole=whole, resend=resend)
                except Exception as e:  # the service did not answer: say so, try again
                    if once or getattr(e, "status", 0) in (401, 403):  # a revoked token does not come back
                        raise
                    typer.echo(f"warning: reading the picture: {safe_text(str(e))}; trying again", err=True)
                    await asyncio.sleep(tracks_every)
                    continue
                for ev in events:
                    queue.put_nowait(to_xml(ev))
                for ev in news:
                    if not ev.type.startswith("a-"):
                        typer.echo(safe_text(f"sent {ev.callsign or ev.uid} ({ev.type}{_gone(ev)})"))
                if resend:
                    pusher.last_full = time.monotonic()
                if once:
                    await _drain(queue, tx)
                    _close(writer)
                    return
                woken.clear()
                try:
                    await asyncio.wait_for(woken.wait(), timeout=tracks_every)
                    whole = True
                except TimeoutError:
                    whole = False
                resend = time.monotonic() - pusher.last_full >= RESEND_S
                whole = whole or resend
            why = tx.exception() if tx.done() and not tx.cancelled() else "the server closed the connection"
            tx.cancel()
            rx.cancel()
            _close(writer)
            typer.echo(f"warning: {cot_url} dropped ({why}); reconnecting in {backoff:g} s", err=True)
            await asyncio.sleep(backoff)
    finally:
        stop.set()


def _gone(e: CotEvent) -> str:
    return ", withdrawn" if e.stale <= e.time else ""


async def _discard(reader: Any) -> None:
    """Read what the TAK server sends (its own chat and pings) and leave it; return when it hangs up."""
    if reader is None:
        await asyncio.Event().wait()  # a send-only transport (udp://, file://): nothing to read
    while await reader.read(65536):
        pass


async def _drain(queue: asyncio.Queue[bytes], tx: asyncio.Task[Any]) -> None:
    """Wait until the TX worker has written everything queued (or failed)."""
    while not queue.empty() and not tx.done():
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # the last event's write and drain
    if tx.done() and not tx.cancelled() and tx.exception() is not None:
        raise DeconflictError(f"--tak: sending failed ({tx.exception()})")
    tx.cancel()


def _close(writer: Any) -> None:
    close = getattr(writer, "close", None)
    if callable(close) and writer not in (None,) and not getattr(writer, "name", "").startswith("<std"):
        close()


@user_errors
def tak(
    tak_url: Annotated[
        str,
        typer.Option(
            "--tak",
            help="The TAK server's CoT input, e.g. tcp://127.0.0.1:8087 (pytak's COT_URL: also udp://, "
            "tls:// with pytak's PYTAK_TLS_* settings from the environment, file:///path/to/picture.cot).",
        ),
    ],
    once: Annotated[bool, typer.Option("--once", help="Send the picture once and stop.")] = False,
    tracks_every: Annotated[
        float, typer.Option(min=0.5, max=60, help="Seconds between two readings of the tracks.")
    ] = 2.0,
    url: UrlOpt = "http://127.0.0.1:8080",
    token: TokenOpt = "",
) -> None:
    """Push the picture you may see to a TAK server as Cursor on Target, and keep it current.

    Zones and activities go as shapes, conflicts as markers with remarks, tracks as position
    reports. It follows the event stream as your member: a TAK feed never carries more of
    another party's notice than you may see. What ends or closes is sent once more as stale.
    Ctrl-C stops.

    Example: deconflict tak --tak tcp://127.0.0.1:8087 --token $IL
    """
    scheme = tak_url.partition("://")[0].lower()
    if scheme == "log":
        raise DeconflictError(
            "--tak: log:// is not offered here; to see the CoT, write it to a file: file:///tmp/x.cot"
        )
    if scheme not in ("tcp", "udp", "file", "tls", "ssl"):
        raise DeconflictError(f"--tak: {tak_url!r}: give the TAK server's address as tcp://HOST:PORT (or udp://...)")
    client = client_for(url, token)
    r = client.http.get(f"/mechanisms/{client.mechanism}")
    rules = r.json().get("rules", {}) if r.status_code == 200 else {}
    pusher = Pusher(client, client.mechanism, client.party, float(rules.get("track_stale_s", 60.0)))
    typer.echo(f"pushing {client.member}'s picture to {tak_url}" + ("" if once else " (Ctrl-C to stop)"), err=True)
    try:
        asyncio.run(_push(pusher, tak_url, once=once, tracks_every=tracks_every, url=url, token=token))
    except KeyboardInterrupt:
        pass
    typer.echo(f"stopped: {pusher.count} CoT events sent", err=True)
