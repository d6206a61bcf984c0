"""A deconflict-drafted NOTAM edited by hand: its windows and levels are read from item E, so an edit to item B,
C, D, F or G alone (which would be silently lost) is refused naming the NOTAM and the item, nothing stored; and
the service's refusal of a notice whose windows have all ended words its instants as the rest of the service
does (ISO 8601 to the second, ``Z``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from support.builders import T0, T4, M, declared_db, syria, vol

from deconflict.cli.interop import import_notams
from deconflict.clock import FixedClock
from deconflict.errors import DeconflictError
from deconflict.formats._notam_read import NoticeDraft, read_notams
from deconflict.formats.docs import activity_to_doc
from deconflict.formats.notam import activity_notam
from deconflict.service import Service
from deconflict.store import open_store

H = timedelta(hours=1)


@pytest.fixture
def svc(tmp_path: Path) -> Service:
    clock = FixedClock(T0)
    return Service(open_store(declared_db(tmp_path / "e.db", clock, mechanism=syria())), clock=clock)


def _draft(svc: Service) -> str:
    """TR's patrol of two windows, 08:00:30–09:00:30 and 11:00–12:00, as deconflict drafts it."""
    volumes = [vol(T4, T0 + 2 * H + timedelta(seconds=30), hours=1, id="a"), vol(T4, T0 + 5 * H, hours=1, id="b")]
    activity = svc.notify(mechanism_id=M, actor="TR", kind="uav_patrol", volumes=volumes).activity
    assert activity is not None
    text = activity_notam(activity_to_doc(activity))
    assert "B) 2504090800 C) 2504091200" in text  # B and C widened outward to the minute
    assert "D) APR 09 0800-0901, APR 09 1100-1200" in text
    return text


def test_the_draft_as_written_reads_back(svc: Service) -> None:
    (draft,) = read_notams(_draft(svc), party="TR")
    assert isinstance(draft, NoticeDraft)
    assert [(v["start"], v["end"]) for v in draft.volumes] == [
        ("2025-04-09T08:00:00Z", "2025-04-09T09:01:00Z"),
        ("2025-04-09T11:00:00Z", "2025-04-09T12:00:00Z"),
    ]


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (("C) 2504091200", "C) 2504091400"), "NOTAM 1 item C: 2025-04-09T14:00:00Z, but item E says the last window"),
        (("C) 2504091200", "C) 2504091130"), "NOTAM 1 item C: 2025-04-09T11:30:00Z, but item E says the last window"),
        (("B) 2504090800", "B) 2504090700"), "NOTAM 1 item B: 2025-04-09T07:00:00Z, but item E says the first window"),
        (("B) 2504090800", "B) 2504090830"), "NOTAM 1 item B: 2025-04-09T08:30:00Z, but item E says the first window"),
        (("APR 09 1100-1200", "APR 09 1100-1130"), "NOTAM 1 item D: its windows are not the ones item E says"),
        # the levels too are read from item E: an edit to F or G alone was silently lost (an interop walk-through:
        # G) FL200 imported, the ceiling stored 3048 m)
        (("G) 13124FT AMSL", "G) FL200"), "NOTAM 1 item G: FL200, but item E says the highest ceiling is 13124FT"),
        (("G) 13124FT AMSL", "G) UNL"), "NOTAM 1 item G: UNL, but item E says the highest ceiling is 13124FT AMSL"),
        (("F) 3280FT AMSL", "F) SFC"), "NOTAM 1 item F: SFC, but item E says the lowest floor is 3280FT AMSL"),
        (("F) 3280FT AMSL", "F) 1000M AMSL"), "NOTAM 1 item F: 1000M AMSL, but item E says the lowest floor is"),
    ],
)
def test_an_edit_to_an_item_that_summarises_item_e_is_refused_naming_the_item(
    svc: Service, edit: tuple[str, str], words: str
) -> None:
    text = _draft(svc).replace(*edit)
    with pytest.raises(DeconflictError) as caught:
        read_notams(text, party="TR")
    assert words in caught.value.message, caught.value.message
    before = svc.head(M).seq
    with pytest.raises(DeconflictError, match=words.split(":")[0]):
        import_notams(svc, M, svc.member(M, "TR"), text)
    assert svc.head(M).seq == before


def test_the_refusal_of_ended_windows_says_its_instants_to_the_second_with_z(tmp_path: Path) -> None:
    clock = FixedClock(T0 + timedelta(microseconds=846_738))
    svc = Service(open_store(declared_db(tmp_path / "z.db", clock)), clock=clock)
    text = """A0002/25 NOTAMN
Q) OSTT/QWULW/IV/BO/W/000/100/3431N03738E005
A) OSTT B) 2504080800 C) 2504081000
E) UAV FLIGHTS.
F) SFC G) FL100
"""
    with pytest.raises(DeconflictError) as caught:
        import_notams(svc, M, svc.member(M, "TR"), text)
    assert (
        "(the latest ended at 2025-04-08T10:00:00Z, now is 2025-04-09T06:00:00Z); notify activity still to come"
    ) in caught.value.message, caught.value.message


def test_a_notam_in_lower_case_or_with_a_byte_order_mark_reads_as_written_in_capitals(svc: Service) -> None:
    """NOTAM text is upper case; one pasted in lower case, or saved with a byte order mark, was "no NOTAM found"."""
    text = _draft(svc)
    expected = read_notams(text, party="TR")
    assert read_notams("\ufeff" + text, party="TR") == expected
    (lower,) = read_notams(text.lower(), party="TR")  # read in capitals: its volumes' ids too, 'a' as 'A'
    (draft,) = expected
    assert isinstance(lower, NoticeDraft) and isinstance(draft, NoticeDraft)
    assert lower.volumes == [{**v, "id": v["id"].upper()} for v in draft.volumes]
    assert (lower.kind, lower.title, lower.activity) == (draft.kind, draft.title, draft.activity)


def test_a_draft_is_refused_again_only_when_it_is_the_activity_the_record_holds(svc: Service) -> None:
    """A draft of TR-0001 imported into the record that holds TR-0001 is that activity again (refused: amend it);
    the same draft with its windows moved a day on is a new activity (an old draft reused), and so is a draft
    of another record's TR-0001 (a review: refused by its id alone, pointing at an unrelated TR-0001)."""
    text = _draft(svc)
    with pytest.raises(DeconflictError, match="it is the NOTAM of activity TR-0001, which the record holds already"):
        import_notams(svc, M, svc.member(M, "TR"), text)
    moved = text.replace("2504090", "2504100").replace("2504091", "2504101").replace("APR 09", "APR 10")
    assert moved != text and "2504" + "09" not in moved.split("E)")[1]
    (line,) = import_notams(svc, M, svc.member(M, "TR"), moved)
    assert "TR-0002 notified" in line
    (draft,) = read_notams(moved, party="TR")
    assert isinstance(draft, NoticeDraft)
    stored = activity_to_doc(svc.activity(M, "TR-0002"))["volumes"]
    assert [(v["start"], v["end"]) for v in stored] == [(v["start"], v["end"]) for v in draft.volumes]


PUBLISHED = """A1260/26 NOTAMN
Q) OSTT/QWULW/IV/BO/W/000/050/3445N03700E010
A) OSTT B) 2612080600 C) 2612101200
D) {d}
E) UAS FLIGHTS.
F) SFC G) 5000FT AMSL
"""


@pytest.mark.parametrize(
    ("d", "windows"),
    [
        (  # refused before: "expected windows such as 'APR 09 ...'" (an interop walk-through; aviconv reads it)
            "DAILY 0600-1200",
            [("2026-12-08T06:00:00Z", "2026-12-08T12:00:00Z"), ("2026-12-09T06:00:00Z", "2026-12-09T12:00:00Z"),
             ("2026-12-10T06:00:00Z", "2026-12-10T12:00:00Z")],
        ),
        # 7 December 2026 is a Monday: Tuesday to Thursday here, each night held to items B to C
        ("MON-FRI 2200-0200", [("2026-12-08T22:00:00Z", "2026-12-09T02:00:00Z"),
                               ("2026-12-09T22:00:00Z", "2026-12-10T02:00:00Z")]),
        ("TUE THU 0600-0700 1000-1100, WED 0800-0830", [
            ("2026-12-08T06:00:00Z", "2026-12-08T07:00:00Z"), ("2026-12-08T10:00:00Z", "2026-12-08T11:00:00Z"),
            ("2026-12-09T08:00:00Z", "2026-12-09T08:30:00Z"),
            ("2026-12-10T06:00:00Z", "2026-12-10T07:00:00Z"), ("2026-12-10T10:00:00Z", "2026-12-10T11:00:00Z"),
        ]),
        ("SAT-SUN 0600-1200", None),  # no day of it between B and C
        ("DAILY", None),
        ("DAILY 0600-1260", None),
        ("0600-1200 DAILY", None),
        ("FRIDAY 0600-1200", None),
    ],
)  # fmt: skip
def test_item_d_as_a_schedule_by_day(d: str, windows: list[tuple[str, str]] | None) -> None:
    text = PUBLISHED.format(d=d)
    if windows is None:
        with pytest.raises(DeconflictError, match="NOTAM 1 item D: "):
            read_notams(text, party="TR")
        return
    (draft,) = read_notams(text, party="TR")
    assert isinstance(draft, NoticeDraft)
    assert [(v["start"], v["end"]) for v in draft.volumes] == windows
    assert {(v["floor_m"], v["ceiling_m"]) for v in draft.volumes} == {(-500.0, 1524.0)}
    # named as the KML import and deconflict's own drafts name volumes (v1, v2 ...): the NOTAM import alone said V1
    assert [v["id"] for v in draft.volumes] == [f"v{k}" for k in range(1, len(windows) + 1)]
