"""A live ADS-B feed kept running: read a receiver (BaseStation lines over TCP, or ``aircraft.json`` polled
from a URL or a file), merge the aircraft (:class:`~deconflict.formats.adsb.AdsbPicture`), and hand a
batch of position reports to ``post`` every ``batch_s``; reconnect when the receiver drops, back off up to
``RECONNECT_MAX_S``; count and skip the lines it cannot read with a warning naming each; stop when
``stop`` is set (or on Ctrl-C, which the caller catches: :class:`FeedStats` holds what was done so far).

What it posts has ``at`` on this machine's clock; ``deconflict positions`` moves it onto the service's
clock before sending (:func:`retime`), so a receiver host whose clock is off does not have its reports
refused as future or stale.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deconflict.clock import iso, parse_utc
from deconflict.errors import InvalidInput
from deconflict.formats._adsb_beast import BeastReader
from deconflict.formats.adsb import AdsbLineError, AdsbPicture, parse_aircraft_json, parse_sbs_line

if TYPE_CHECKING:
    import httpx

__all__ = [
    "RECONNECT_MAX_S",
    "FeedStats",
    "follow",
    "load_aircraft_json",
    "read_aircraft_json",
    "retime",
    "run_aircraft_json",
    "run_sbs",
]

RECONNECT_MAX_S = 10.0
"""The longest wait between two attempts to reach a receiver."""
POLL_TIMEOUT_S = 5.0
"""How long one poll of an ``aircraft.json`` URL may take before it counts as failed."""
KEEP_OPEN_S = 60.0
"""How long the connection to an ``aircraft.json`` URL is kept open between polls (httpx's 5 s by default would
open a new one whenever a poll and the sending of its positions to a slow service took longer)."""
_READ_S = 0.2
QUIET_S = 30.0
"""How long a receiver may send messages that give no position to send before a warning says so (once, until
positions flow again)."""


def _local_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class FeedStats:
    """What a feed did: lines read and skipped, batches and reports posted, batches refused, reconnects."""

    lines: int = 0
    bad_lines: int = 0
    batches: int = 0
    reports: int = 0
    failed_batches: int = 0
    connections: int = 0
    drops: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for a person."""
        return (
            f"{self.reports} positions sent in {self.batches} batches; {self.lines} lines read, "
            f"{self.bad_lines} bad lines skipped; {self.failed_batches} batches refused; "
            f"{self.drops} drops of the feed"
        )


def retime(reports: list[dict[str, Any]], offset: timedelta) -> list[dict[str, Any]]:
    """The reports with ``at`` moved by ``offset`` (the service's clock less this machine's)."""
    return [{**r, "at": iso(parse_utc(r["at"], field="at") + offset)} for r in reports]


@dataclass
class _Batcher:
    """Hands the picture's new reports to ``post`` at most every ``batch_s`` (a refused batch is warned
    about and dropped: positions are perishable, the next batch carries newer ones)."""

    picture: AdsbPicture
    post: Callable[[list[dict[str, Any]]], Any]
    warn: Callable[[str], None]
    stats: FeedStats
    batch_s: float
    now: Callable[[], datetime]
    due: float = 0.0
    quiet_s: float = QUIET_S
    quiet_since: float = field(default_factory=time.monotonic)
    read_then: int = 0
    """The messages read when the quiet began."""
    told: bool = False

    def tick(self, *, force: bool = False) -> None:
        if not force and time.monotonic() < self.due:
            return
        self.due = time.monotonic() + self.batch_s
        reports = self.picture.reports(self.now())
        if not reports:
            self._quiet()
            return
        self.quiet_since, self.read_then, self.told = time.monotonic(), self.stats.lines, False
        try:
            self.post(reports)
        except Exception as e:  # the service refused, or could not be reached: the feed goes on
            if getattr(e, "status", 0) in (401, 403):
                raise  # but not without a token that works: that does not come back by itself
            self.stats.failed_batches += 1
            self.warn(f"a batch of {len(reports)} positions was not stored: {_reason(e)}")
            return
        self.stats.batches += 1
        self.stats.reports += len(reports)

    def _quiet(self) -> None:
        """A receiver that talks and gives nothing to send (Mode S without ADS-B positions, only one of each
        even and odd position message, aircraft that --icao leaves out) was silent on our side: said once."""
        heard = self.stats.lines - self.read_then
        if self.told or heard == 0 or time.monotonic() - self.quiet_since < self.quiet_s:
            return
        self.told = True
        self.warn(
            f"{heard} messages read in {time.monotonic() - self.quiet_since:.0f} s and not one position to send: "
            "does the receiver decode ADS-B airborne positions (each needs an even and an odd message within "
            "10 s), and does --icao name aircraft it hears?"
        )


def _reason(e: BaseException) -> str:
    text = getattr(e, "message", None) or str(e) or type(e).__name__
    return str(text)


def run_sbs(
    host: str,
    port: int,
    post: Callable[[list[dict[str, Any]]], Any],
    *,
    stop: threading.Event,
    warn: Callable[[str], None],
    picture: AdsbPicture | None = None,
    stats: FeedStats | None = None,
    batch_s: float = 1.0,
    now: Callable[[], datetime] = _local_now,
    beast: bool = False,
    quiet_s: float = QUIET_S,
) -> FeedStats:
    """Follow the BaseStation feed (or, with ``beast``, the Mode S Beast feed) at ``host``:``port`` until
    ``stop`` is set; see the module (``quiet_s``: :data:`QUIET_S`)."""
    stats = stats if stats is not None else FeedStats()
    batcher = _Batcher(picture or AdsbPicture(), post, warn, stats, batch_s, now, quiet_s=quiet_s)
    name = "Beast" if beast else "SBS"
    backoff = 1.0
    while not stop.is_set():
        try:
            conn = socket.create_connection((host, port), timeout=5)
        except OSError as e:
            warn(f"cannot reach the {name} feed at {host}:{port} ({e.strerror or e}); trying again in {backoff:g} s")
            stop.wait(backoff)
            backoff = min(RECONNECT_MAX_S, backoff * 2)
            continue
        stats.connections += 1
        why = _follow(conn, batcher, stop, warn, BeastReader() if beast else None)
        batcher.tick(force=True)
        if why is None:
            break  # stopped
        stats.drops += 1
        backoff = 1.0 if why == "closed" else min(RECONNECT_MAX_S, backoff * 2)
        warn(f"the {name} feed at {host}:{port} dropped ({why}); reconnecting in {backoff:g} s")
        stop.wait(backoff)
    return stats


def _follow(
    conn: socket.socket, batcher: _Batcher, stop: threading.Event, warn: Callable[[str], None], beast: Any
) -> str | None:
    """Read lines (or Beast frames) from one connection until it drops (the reason) or ``stop`` is set
    (None)."""
    stats, picture = batcher.stats, batcher.picture
    pending = b""
    with conn:
        conn.settimeout(_READ_S)
        while not stop.is_set():
            batcher.tick()
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError as e:
                return e.strerror or str(e)
            if not chunk:
                return "closed"
            received = batcher.now()
            if beast is not None:
                for msg in beast.messages(chunk, time.monotonic()):
                    picture.feed(msg, received)
                stats.lines = beast.frames
                continue
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                stats.lines += 1
                try:
                    text = raw.decode("ascii")
                    picture.feed(parse_sbs_line(text, stats.lines), received)
                except UnicodeDecodeError:
                    stats.bad_lines += 1
                    warn(f"line {stats.lines}: not ASCII text; skipped")
                except AdsbLineError as e:
                    stats.bad_lines += 1
                    warn(f"{e.message}; skipped")
            if len(pending) > 4096:  # no end of line in sight: not a BaseStation feed
                stats.lines += 1
                stats.bad_lines += 1
                warn(f"line {stats.lines}: over 4096 bytes without an end of line; skipped")
                pending = b""
    return None


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def read_aircraft_json(source: str, *, timeout_s: float = POLL_TIMEOUT_S, http: httpx.Client | None = None) -> str:
    """The text of an ``aircraft.json`` at an http(s) URL or in a file; ``http``: the client a feed polls the
    URL with (one connection kept open, not a client and its TLS context made each second: 30 ms of CPU).

    Raises:
        AdsbLineError: the URL did not answer 200, or the file cannot be read.
    """
    if _is_url(source):
        import httpx

        try:
            if http is None:
                r = httpx.get(source, timeout=timeout_s)
            else:
                try:
                    r = http.get(source)
                except httpx.RemoteProtocolError:
                    # the receiver closed the connection kept open as this poll went out on it (its idle timeout
                    # about the poll's interval): asked once more, on a new connection
                    r = http.get(source)
        except httpx.HTTPError as e:
            raise AdsbLineError(f"{source}: no answer ({type(e).__name__}: {e})") from None
        if r.status_code != 200:
            raise AdsbLineError(f"{source}: answered {r.status_code}, not the aircraft.json")
        return r.text
    try:
        return Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise AdsbLineError(f"{source}: cannot be read ({getattr(e, 'strerror', None) or e})") from None


def load_aircraft_json(
    source: str, picture: AdsbPicture, received: datetime, *, http: httpx.Client | None = None
) -> list[str]:
    """Read ``source`` once into ``picture`` (a URL with ``http``, when given); the warnings about the aircraft
    it left out.

    Raises:
        AdsbLineError: the file cannot be read or is not an ``aircraft.json`` (naming the line).
    """
    found, warnings = parse_aircraft_json(read_aircraft_json(source, http=http), source=source)
    for a in found:
        picture.put(a["icao"], a["state"], received - timedelta(seconds=a["age_s"]), a["stamp"])
    return warnings


def run_aircraft_json(
    source: str,
    post: Callable[[list[dict[str, Any]]], Any],
    *,
    stop: threading.Event,
    warn: Callable[[str], None],
    picture: AdsbPicture | None = None,
    stats: FeedStats | None = None,
    every_s: float = 1.0,
    now: Callable[[], datetime] = _local_now,
) -> FeedStats:
    """Poll ``source`` (URL or file) every ``every_s`` until ``stop`` is set, posting each poll's new
    positions. A poll that fails is warned about (once while it keeps failing the same way)."""
    stats = stats if stats is not None else FeedStats()
    batcher = _Batcher(picture or AdsbPicture(), post, warn, stats, 0.0, now)
    said: set[str] = set()
    with ExitStack() as held:
        http = None
        if _is_url(source):
            import httpx

            kept = httpx.Limits(keepalive_expiry=KEEP_OPEN_S)
            http = held.enter_context(httpx.Client(timeout=POLL_TIMEOUT_S, limits=kept))
        while not stop.is_set():
            try:
                for w in load_aircraft_json(source, batcher.picture, now(), http=http):
                    if w not in said:
                        said.add(w)
                        warn(f"{w}; left out")
                stats.lines += 1
            except AdsbLineError as e:
                stats.bad_lines += 1
                if e.message not in said:
                    said.add(e.message)
                    warn(f"{e.message}; trying again in {every_s:g} s")
            batcher.tick(force=True)
            stop.wait(every_s)
    return stats


def _address(value: str, option: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"{option}: {value!r} is not HOST:PORT (e.g. 127.0.0.1:30003)", field=option)
    return host.strip("[]"), int(port)


def follow(
    kind: str,
    source: str,
    post: Callable[[list[dict[str, Any]]], Any],
    *,
    only: frozenset[str] = frozenset(),
    once: bool = False,
    say: Callable[[str], None],
    warn: Callable[[str], None],
) -> FeedStats:
    """What ``deconflict positions`` runs for a live receiver: ``kind`` ``sbs`` or ``beast`` (``source``
    HOST:PORT) or ``aircraft-json`` (URL or file; ``once`` reads it once), until Ctrl-C, which ends it
    cleanly with the stats so far.

    Raises:
        InvalidInput: a bad address or ICAO filter, or (``once``) an aircraft.json that cannot be read.
    """
    if bad := sorted(h for h in only if len(h) != 6 or any(c not in "0123456789ABCDEF" for c in h)):
        raise InvalidInput(f"--icao: {bad[0]!r} is not an ICAO address (6 hex digits, e.g. 738065)", field="--icao")
    picture, stats, stop = AdsbPicture(only=only), FeedStats(), threading.Event()
    if not only:
        say("note: every aircraft the receiver hears is sent as your party's; --icao HEX sends only yours")
    if once:
        if kind != "aircraft-json":
            raise InvalidInput("--once reads an --aircraft-json once; a TCP feed runs until Ctrl-C", field="--once")
        read_at = _local_now()
        for w in load_aircraft_json(source, picture, read_at):  # a bad file raises: nothing sent
            warn(f"{w}; left out")
        if reports := picture.reports(read_at):
            post(reports)
            stats.reports = len(reports)
        else:
            say("no aircraft with a whole position to send")
        return stats
    address = _address(source, f"--{kind}") if kind != "aircraft-json" else ("", 0)

    def interrupted(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: at once
        stop.set()  # the first: the batch on its way is finished and counted, then the feed stops

    previous = (
        signal.signal(signal.SIGINT, interrupted) if threading.current_thread() is threading.main_thread() else None
    )
    try:
        if kind == "aircraft-json":
            say(f"polling {source} every second (Ctrl-C to stop)")
            run_aircraft_json(source, post, stop=stop, warn=warn, picture=picture, stats=stats)
        else:
            say(f"following the {'Beast' if kind == 'beast' else 'SBS'} feed at {source} (Ctrl-C to stop)")
            run_sbs(*address, post, stop=stop, warn=warn, picture=picture, stats=stats, beast=kind == "beast")
    except KeyboardInterrupt:
        stop.set()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return stats
