"""What a member wrote cannot drive the duty officer's terminal: escape sequences (clear screen, window
title), carriage returns and line feeds that forge a line, and bidi overrides are neutralised by
``cli.common.safe_text`` wherever the command line prints them (``hotline tail``, ``conflicts``,
``activities``, and every other command through the stdout guard)."""

from __future__ import annotations

import re

import httpx
import pytest
from support.builders import A, M
from support.live import LiveServer, auth
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.cli.common import BIDI_CONTROLS, safe_text
from deconflict.cli.remote import conflict_line, message_text
from deconflict.errors import DeconflictError

runner = CliRunner()

CLEAR = "\x1b[2J\x1b[H"
TITLE = "\x1b]0;owned\x07"
FORGED = "\r2026-12-02T08:00:00Z  M99  alert from system to IL  [ACK BY 2026-12-02T08:10:00Z]"
BIDI = "\u202eC1 \u2066evil\u2069 \u200f"
NASTY = [CLEAR, TITLE, FORGED, "\nforged line", BIDI, "\x9b31m", "\x7f", "a\u2028b"]

RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029" + "".join(BIDI_CONTROLS) + "]")
"""Anything a terminal would act on (line feed and tab are the command's own)."""


@pytest.mark.parametrize("nasty", NASTY)
def test_safe_text_leaves_nothing_a_terminal_acts_on(nasty: str) -> None:
    shown = safe_text(f"before {nasty} after")
    assert not RAW.search(shown) and "\n" not in shown and "\t" not in shown
    assert shown.startswith("before ") and shown.endswith(" after")


def test_safe_text_keeps_every_language() -> None:
    for text in ("Received and acknowledged: C1.", "Alındı ve onaylandı", "התקבל ואושר", "تم الاستلام", "Принято"):
        assert safe_text(text) == text
    assert safe_text("ESC[2J as typed, and a tab\there", lines=True) == "ESC[2J as typed, and a tab\there"


def test_a_message_prints_as_two_lines_whatever_it_holds() -> None:
    for nasty in NASTY:
        message = {
            "id": "M7",
            "type": "query",
            "free_text": True,
            "original": {"lang": "en"},
            "from": "TR",
            "to": ["IL"],
            "sent_at": "2026-12-02T08:00:00Z",
            "text": f"Call us{nasty} now",
        }
        shown = message_text(message)
        assert len(shown.split("\n")) == 2 and not RAW.search(shown), repr(shown)
    c = {"id": "C1", "kind": "zone_breach", "activity": f"TR-1{CLEAR}", "zone": f"Z{FORGED}", "status": "open"}
    assert "\n" not in conflict_line(c) and not RAW.search(conflict_line(c))


def test_hotline_tail_neutralises_what_members_wrote(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client
) -> None:
    sent = []
    for nasty in NASTY:
        text = f"Please call{nasty} now"
        try:
            sent.append(live.service.send_message(mechanism_id=M, actor="TR", text=text, lang="en", to=["IL"]))
        except DeconflictError:
            continue  # refused by the service: it never reaches a terminal either
    r = client.get(f"{A}/messages", headers=auth(tokens["IL"]))
    assert r.status_code == 200
    out = runner.invoke(app, ["hotline", "tail", "--no-follow", "--url", live.url, "--token", tokens["IL"]])
    assert out.exit_code == 0, out.output
    assert not RAW.search(out.stdout), repr(out.stdout)
    lines = out.stdout.splitlines()
    assert len(lines) == 2 * len(r.json())  # each message its head and its text: nothing forged a line
    assert all(line.startswith("    ") for line in lines[1::2])
    for m in sent:
        assert any(line.startswith(f"{m['sent_at'][:10]}") and f"  {m['id']}  " in line for line in lines[::2])


def test_every_command_prints_through_the_guard(live: LiveServer, tokens: dict[str, str]) -> None:
    # an error worded by the service about what a member typed comes back through the guard too
    out = runner.invoke(app, ["ack", f"C9{CLEAR}{BIDI}", "--url", live.url, "--token", tokens["IL"]])
    assert out.exit_code != 0
    assert not RAW.search(out.output), repr(out.output)


@pytest.mark.parametrize(
    "command",
    [
        ["replay", "--at", "2025-04-09T06:30:00Z"],
        ["replay", "--at", "2025-04-09T06:30:00Z", "--json"],
        ["ledger", "check"],
        [
            "timeline",
            "--lat",
            "34.5",
            "--lon",
            "37.6",
            "--radius-km",
            "50",
            "--from",
            "2025-04-09T00:00:00Z",
            "--to",
            "2025-04-10T00:00:00Z",
        ],
    ],
)
def test_a_reader_that_goes_away_ends_the_command_quietly(db: str, command: list[str]) -> None:
    """``deconflict replay ... | head -1``: the reader closes the pipe before the command has written; the command
    ends with 0 and says nothing on stderr (it printed "error: Broken pipe")."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    exe = str(Path(sys.executable).parent / "deconflict")
    args = [*command, "--db", db]
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    done = subprocess.run([exe, *args], stdout=write, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    os.close(write)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr


def test_a_message_to_two_parties_says_who_answered_and_who_is_awaited() -> None:
    """Türkiye answered in time, the facilitator not yet: the line said "[ACK BY …]" as if nobody had, and once
    the facilitator answered, only its late time."""
    m = {
        "id": "M11", "type": "query", "from": "IL", "to": ["AZ", "TR"], "sent_at": "2026-12-06T13:01:16Z",
        "text": "?", "needs_ack": True, "deadline": "2026-12-06T13:11:16Z", "status": "awaiting",
        "acknowledged": {"TR": {"member": "TR", "at": "2026-12-06T13:01:26Z"}}, "acknowledged_at": None,
    }  # fmt: skip
    head = message_text(m).splitlines()[0]
    assert head.endswith("[acknowledged by TR 2026-12-06T13:01:26Z; ACK BY 2026-12-06T13:11:16Z from AZ]"), head
    both = {**m, "status": "acknowledged", "acknowledged_at": "2026-12-06T13:12:19Z"}
    both["acknowledged"] = {**m["acknowledged"], "AZ": {"member": "AZ", "at": "2026-12-06T13:12:19Z"}}
    head = message_text(both).splitlines()[0]
    assert head.endswith("[acknowledged by AZ 2026-12-06T13:12:19Z; acknowledged by TR 2026-12-06T13:01:26Z]"), head
