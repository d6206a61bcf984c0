"""``ledger verify`` on malformed bundles (issue 13): every one a named error with its exit status, never a
traceback; numbers JSON has not, repeated keys, unknown types, an empty bundle, a header that disagrees."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import insider
from typer.testing import CliRunner

from deconflict.cli import app
from deconflict.errors import InvalidInput
from deconflict.record import strict_json, verify

runner = CliRunner()


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The demo's record (checkpoints re-dated at its last entry) and the keys to re-sign it with."""
    db = tmp_path_factory.mktemp("robust") / "demo.db"
    assert runner.invoke(app, ["demo", "--script", "--db", str(db)]).exit_code == 0
    out = db.with_name("record.jsonl")
    assert runner.invoke(app, ["ledger", "export", "--db", str(db), "--out", str(out)]).exit_code == 0
    keys = insider.demo_keys(db)
    return insider.write(out, insider.reseal(insider.read(out), keys)), keys


Lines = list[str]


def _text(lines: Lines, n: int, old: str, new: str) -> Lines:
    assert old in lines[n], lines[n][:200]
    return lines[:n] + [lines[n].replace(old, new, 1)] + lines[n + 1 :]


def _json(lines: Lines, n: int, fn: Callable[[Any], Any]) -> Lines:
    doc = json.loads(lines[n])
    fn(doc)
    return lines[:n] + [json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n"] + lines[n + 1 :]


def _notice_line(lines: Lines) -> int:
    return next(i for i, line in enumerate(lines) if '"activity.notified"' in line and '"floor_m": ' in line)


RAW: list[tuple[str, Callable[[Lines], Lines], int, str]] = [
    ("1e999 in a payload", lambda ls: _text(ls, _notice_line(ls), '"floor_m": ', '"floor_m": 1e999, "x": '), 1,
     "is not finite"),
    ("NaN in a payload", lambda ls: _text(ls, _notice_line(ls), '"floor_m": ', '"floor_m": NaN, "x": '), 1,
     "it holds NaN"),
    ("-Infinity in a payload", lambda ls: _text(ls, _notice_line(ls), '"floor_m": ', '"floor_m": -Infinity, "x": '), 1,
     "it holds -Infinity"),
    ("a repeated key in an entry", lambda ls: _text(ls, _notice_line(ls), '"kind": ', '"kind": "x", "kind": '), 1,
     "names 'kind' twice in one object"),
    ("a repeated key in the header", lambda ls: _text(ls, 0, '"format": ', '"format": "x", "format": '), 2,
     "line 1 is not a record bundle header"),
    ("an entry that is not an object", lambda ls: ls[:3] + ["[1, 2]\n"] + ls[4:], 1, "entry 3 (line 4): not an entry"),
    ("an entry's mechanism changed", lambda ls: _json(ls, 5, lambda d: d.update(mechanism="other")), 1,
     "it is an entry of mechanism 'other', but this record is of"),
    ("a sequence number as text", lambda ls: _json(ls, 5, lambda d: d.update(seq="5")), 1,
     "entry 5: its sequence number is written as '5', not as a whole number"),
    ("the header's head_seq edited", lambda ls: _json(ls, 0, lambda d: d.update(head_seq=d["head_seq"] - 1)), 1,
     "but its header says"),
    ("the header's entry count edited", lambda ls: _json(ls, 0, lambda d: d.update(entries=d["entries"] + 1)), 1,
     "but its header says"),
    ("the header names no mechanism", lambda ls: _json(ls, 0, lambda d: d.pop("mechanism")), 2,
     "the bundle header names no mechanism"),
    ("the header is a list", lambda ls: ["[]\n"] + ls[1:], 2, "not a deconflict record bundle"),
    ("a header checkpoint's hash edited",
     lambda ls: _json(ls, 0, lambda d: d["checkpoints"][0].update(hash="0" * 64)), 1,
     "the service's signature does not verify for the hash and time it states"),
    ("a header checkpoint without a seq", lambda ls: _json(ls, 0, lambda d: d["checkpoints"][0].pop("seq")), 2,
     "checkpoint 1 is not a checkpoint"),
    ("the header's checkpoints not a list", lambda ls: _json(ls, 0, lambda d: d.update(checkpoints={})), 2,
     "checkpoints are not a list"),
    ("an empty bundle", lambda ls: _json(ls[:1], 0, lambda d: d.update(entries=0, head_seq=0, checkpoints=[])), 1,
     "the bundle holds no entries"),
    ("the key list's custody edited", lambda ls: _json(ls, 0, lambda d: d["keys"][1].update(custody="party")), 1,
     "as held by 'party'"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "code", "words"), RAW, ids=[c[0] for c in RAW])
def test_malformed_bundles_are_named_with_an_exit_status(
    good: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    case: str,
    change: Callable[[Lines], Lines],
    code: int,
    words: str,
) -> None:
    lines = good[0].read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(change(lines)), encoding="utf-8")
    result = runner.invoke(app, ["ledger", "verify", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    assert words in result.output, result.output


def _resealed(good: tuple[Path, dict[str, Any]], edit: Callable[[list[dict[str, Any]]], None]) -> insider.Bundle:
    header, docs = copy.deepcopy(insider.read(good[0]))
    edit(docs)
    return insider.reseal((header, docs), good[1])


RESIGNED: list[tuple[str, Callable[[list[dict[str, Any]]], None], str]] = [
    ("an unknown entry type", lambda ds: ds[6].update(type="activity.teleported"), "unknown entry type"),
    ("members that are not objects", lambda ds: ds[0]["payload"].update(members=[1, "x"]), "list of members"),
    ("a payload that is not an object", lambda ds: ds[7].update(payload=[1, 2]), "payload is not an object"),
    ("a time that is no time", lambda ds: ds[7].update(at="yesterday"), "unreadable"),
]


@pytest.mark.parametrize(("case", "edit", "words"), RESIGNED, ids=[c[0] for c in RESIGNED])
def test_well_signed_nonsense_is_named(
    good: tuple[Path, dict[str, Any]], tmp_path: Path, case: str, edit: Callable[..., None], words: str
) -> None:
    try:
        bundle = _resealed(good, edit)
    except (ValueError, InvalidInput):  # the insider's own tools cannot hash it: write it unsealed
        bundle = copy.deepcopy(insider.read(good[0]))
        edit(bundle[1])
    path = insider.write(tmp_path / "bad.jsonl", bundle)
    result = runner.invoke(app, ["ledger", "verify", str(path)])
    assert "Traceback" not in result.output
    assert result.exit_code == 1 and words in result.output, result.output


def test_kept_checkpoints_with_nan_are_named(good: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    kept = tmp_path / "kept.json"
    kept.write_text('[{"seq": NaN}]', encoding="utf-8")
    result = runner.invoke(app, ["ledger", "verify", str(good[0]), "--checkpoints", str(kept)])
    assert result.exit_code == 2 and "not checkpoints" in result.output, result.output


def test_withheld_ranges_read_short() -> None:
    assert verify.withheld_ranges([17, 12, 15, 16]) == "12, 15–17"
    assert verify.withheld_ranges([]) == ""


def test_load_json_refuses_what_readers_could_read_differently() -> None:
    for text in ('{"a": 1, "a": 2}', '{"a": NaN}', "[Infinity]"):
        with pytest.raises(ValueError):
            strict_json.load_json(text)
    assert strict_json.load_json('{"a": {"b": [1.5]}}') == {"a": {"b": [1.5]}}
