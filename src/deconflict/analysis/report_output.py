"""A compliance report written out: the JSON document, CSV rows, a PNG chart and summary lines for a person.

Each takes a :class:`~deconflict.analysis.report_types.Report` as
:func:`~deconflict.analysis.report.compliance_report` computes it. Matplotlib is imported
only inside :func:`write_chart`, so reading and judging the record never loads it.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Any

from deconflict.analysis.report_types import Acknowledgements, Due, Report
from deconflict.clock import iso

__all__ = [
    "CHART_SIZE_PX",
    "CSV_COLUMNS",
    "csv_rows",
    "report_to_json",
    "summary_lines",
    "write_chart",
    "write_csv",
]


def _round(v: float | None, digits: int = 1) -> float | None:
    return None if v is None else round(v, digits)


def _due_json(d: Due) -> dict[str, Any]:
    return {
        "kind": d.kind,
        "id": d.id,
        "raised_at": iso(d.raised_at),
        "deadline": iso(d.deadline),
        "acknowledged_at": iso(d.acknowledged_at) if d.acknowledged_at else None,
        "closed_at": iso(d.closed_at) if d.closed_at else None,
        "delay_s": _round(d.delay_s),
        "outcome": d.outcome,
    }


def _acks_json(a: Acknowledgements) -> dict[str, Any]:
    return {
        "due": a.due,
        "acknowledged": a.acknowledged,
        "in_time": a.in_time,
        "late": a.late,
        "missed": a.missed,
        "pending": a.pending,
        "closed": a.closed,
        "median_s": _round(a.median_s),
        "p90_s": _round(a.p90_s),
        "items": [_due_json(d) for d in a.items],
    }


def report_to_json(report: Report) -> dict[str, Any]:
    """The report as a JSON-able document (times ISO 8601 UTC, durations in seconds)."""
    r = report.rules
    parties = []
    for p in report.parties:
        lt = p.lead_times
        missed = p.missed_deadlines
        checks = p.missed_line_checks
        parties.append(
            {
                "party": p.party,
                "name": p.name,
                "lead_time": {
                    "count": lt.count,
                    "min_s": _round(lt.min_s),
                    "p10_s": _round(lt.p10_s),
                    "median_s": _round(lt.median_s),
                    "p90_s": _round(lt.p90_s),
                    "below_minimum": lt.below_minimum,
                    "share_below_minimum": _round(lt.share_below_minimum, 4),
                    "notices": [
                        {
                            "activity": n.activity,
                            "version": n.version,
                            "seq": n.seq,
                            "notified_at": iso(n.notified_at),
                            "start": iso(n.start),
                            "lead_s": _round(n.lead_s),
                            "below_minimum": n.lead_s < r.min_notice_s,
                        }
                        for n in lt.notices
                    ],
                },
                "acknowledgement": {"conflicts": _acks_json(p.conflicts), "messages": _acks_json(p.messages)},
                "missed_deadlines": {"count": len(missed), "ids": [d.id for d in missed]},
                "escalations": {
                    "count": p.escalations.count,
                    "highest_rung": p.escalations.highest_rung,
                    "highest_rung_name": p.escalations.highest_rung_name,
                    "messages": list(p.escalations.messages),
                },
                "line_checks": {**_acks_json(p.line_checks), "missed_ids": [d.id for d in checks]},
                "missed_line_checks": len(checks),
            }
        )
    return {
        "mechanism": report.mechanism,
        "period": {
            "from": iso(report.start) if report.start else None,
            "to": iso(report.end) if report.end else None,
            "judged_at": iso(report.judged_at),
        },
        "record": {
            "entries": report.entries,
            "withheld": report.withheld,
            "first_at": iso(report.first_at) if report.first_at else None,
            "last_at": iso(report.last_at) if report.last_at else None,
        },
        "rules": {
            "min_notice_s": r.min_notice_s,
            "ack_deadline_s": r.ack_deadline_s,
            "line_check_interval_s": r.line_check_interval_s,
            "ladder": [g.name for g in r.ladder],
        },
        "parties": parties,
    }


CSV_COLUMNS = ("mechanism", "period_from", "period_to", "party", "party_name", "metric", "description", "value", "unit")
"""Columns of the CSV: one row per party and metric; durations in minutes, shares in per cent."""


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 2)


def csv_rows(report: Report) -> list[dict[str, Any]]:
    """The report as rows of ``CSV_COLUMNS``: one per party and metric, value empty when nothing was measured."""
    rows = []
    period_from = iso(report.start) if report.start else (iso(report.first_at) if report.first_at else "")
    period_to = iso(report.end) if report.end else iso(report.judged_at)
    for p in report.parties:
        lt, c, m, chk, esc = p.lead_times, p.conflicts, p.messages, p.line_checks, p.escalations
        share = None if lt.share_below_minimum is None else round(100 * lt.share_below_minimum, 1)
        metrics: list[tuple[str, str, Any, str]] = [
            ("notices", "Notices given (new and amended)", lt.count, "count"),
            ("lead_time_min", "Lead time of notices, shortest", _minutes(lt.min_s), "minutes"),
            ("lead_time_p10", "Lead time of notices, 10th percentile", _minutes(lt.p10_s), "minutes"),
            ("lead_time_median", "Lead time of notices, median", _minutes(lt.median_s), "minutes"),
            ("lead_time_p90", "Lead time of notices, 90th percentile", _minutes(lt.p90_s), "minutes"),
            (
                "notices_below_minimum",
                f"Notices below the minimum notice of {report.rules.min_notice_s / 60:g} minutes",
                lt.below_minimum,
                "count",
            ),
            ("share_below_minimum", "Share of notices below the minimum notice", share, "percent"),
            ("conflicts_to_acknowledge", "Conflicts the party had to acknowledge", c.due, "count"),
            ("conflicts_acknowledged", "Conflicts acknowledged", c.acknowledged, "count"),
            ("conflict_ack_median", "Time to acknowledge a conflict, median", _minutes(c.median_s), "minutes"),
            ("conflict_ack_p90", "Time to acknowledge a conflict, 90th percentile", _minutes(c.p90_s), "minutes"),
            ("messages_to_acknowledge", "Hotline messages the party had to acknowledge", m.due, "count"),
            ("messages_acknowledged", "Hotline messages acknowledged", m.acknowledged, "count"),
            ("message_ack_median", "Time to acknowledge a hotline message, median", _minutes(m.median_s), "minutes"),
            (
                "message_ack_p90",
                "Time to acknowledge a hotline message, 90th percentile",
                _minutes(m.p90_s),
                "minutes",
            ),
            (
                "missed_deadlines",
                "Deadlines missed (acknowledged late or not at all)",
                len(p.missed_deadlines),
                "count",
            ),
            ("missed_deadline_ids", "Which conflicts and messages", " ".join(d.id for d in p.missed_deadlines), "ids"),
            ("escalations", "Escalation steps for messages to the party", esc.count, "count"),
            ("highest_rung", "Highest rung of the ladder reached", esc.highest_rung_name or "", "rung"),
            ("line_checks", "Line checks sent to the party", chk.due, "count"),
            ("missed_line_checks", "Line checks not answered in time", len(p.missed_line_checks), "count"),
        ]
        for metric, description, value, unit in metrics:
            rows.append(
                {
                    "mechanism": report.mechanism,
                    "period_from": period_from,
                    "period_to": period_to,
                    "party": p.party,
                    "party_name": p.name,
                    "metric": metric,
                    "description": description,
                    "value": "" if value is None else value,
                    "unit": unit,
                }
            )
    return rows


def write_csv(report: Report, path: Path | str) -> None:
    """Write the report as CSV (UTF-8 with a byte-order mark, so spreadsheets read the names right)."""
    with Path(path).open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(csv_rows(report))


CHART_SIZE_PX = (1200, 800)
"""Width and height of the chart in pixels."""


def write_chart(report: Report, path: Path | str) -> None:
    """Draw the report as a PNG of ``CHART_SIZE_PX``: each party's notice lead times against the minimum
    notice, and bars of missed deadlines, escalations and missed line checks."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    dpi = 100
    fig = Figure(figsize=(CHART_SIZE_PX[0] / dpi, CHART_SIZE_PX[1] / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 1, height_ratios=(3, 2), hspace=0.45, left=0.16, right=0.97, top=0.88, bottom=0.09)
    top, bottom = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    period = _period_words(report)
    fig.suptitle(f"Compliance report: {report.mechanism}\n{period}", fontsize=14)

    min_h = report.rules.min_notice_s / 3600
    parties = report.parties
    labels = [f"{p.name} ({p.party})\n{p.lead_times.count} notices" for p in parties]
    all_hours = [n.lead_s / 3600 for p in parties for n in p.lead_times.notices]
    for i, p in enumerate(parties):
        hours = [n.lead_s / 3600 for n in p.lead_times.notices]
        if not hours:
            top.text(min_h, i, "  no notices in this period", va="center", fontsize=10, color="grey")
            continue
        if len(hours) >= 5:
            top.boxplot(
                [hours], positions=[i], orientation="horizontal", widths=0.5, showfliers=False, patch_artist=False
            )
        offsets = [((k * 0.37) % 0.5) - 0.25 for k in range(len(hours))]  # spread points so they do not hide
        short = [h < min_h for h in hours]
        top.scatter(
            [h for h, s in zip(hours, short, strict=True) if not s],
            [i + o for o, s in zip(offsets, short, strict=True) if not s],
            s=30,
            color="#1f6fb4",
            alpha=0.8,
            zorder=3,
            label="notice given in time",
        )
        top.scatter(
            [h for h, s in zip(hours, short, strict=True) if s],
            [i + o for o, s in zip(offsets, short, strict=True) if s],
            s=40,
            color="#c62828",
            marker="D",
            zorder=3,
            label="notice shorter than the minimum",
        )
    for i, p in enumerate(parties):
        if p.lead_times.median_s is not None:
            top.plot([p.lead_times.median_s / 3600] * 2, [i - 0.3, i + 0.3], color="black", lw=2.5, label="median")
    top.axvline(min_h, color="#c62828", linestyle="--", linewidth=1.5, label=f"minimum notice ({_hours(min_h)})")
    top.set_yticks(range(len(parties)), labels)
    top.set_ylim(len(parties) - 0.3, -0.7)  # first party on top
    if all_hours and max(abs(h) for h in all_hours) > 48:
        top.set_xscale("symlog", linthresh=1.0)
        top.xaxis.set_major_formatter(ScalarFormatter())
    else:  # a linear axis from zero, so the distances to the minimum read true
        lo, hi = min([0.0, *all_hours]), max([2 * min_h, *all_hours])
        pad = (hi - lo) * 0.05
        top.set_xlim(lo - pad if lo < 0 else 0.0, hi + pad)
    top.set_xlabel("Notice given, in hours before the activity starts")
    top.set_title("How far ahead each party notified its activities", fontsize=12)
    top.grid(axis="x", alpha=0.3)
    handles, names = top.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=True))
    top.legend(unique.values(), unique.keys(), loc="best", fontsize=9)

    series = (
        ("Missed deadlines", [len(p.missed_deadlines) for p in parties], "#c62828"),
        ("Escalations", [p.escalations.count for p in parties], "#ef6c00"),
        ("Missed line checks", [len(p.missed_line_checks) for p in parties], "#6a1b9a"),
    )
    width = 0.25
    for k, (name, values, colour) in enumerate(series):
        xs = [i + (k - 1) * width for i in range(len(parties))]
        bars = bottom.bar(xs, values, width=width * 0.95, color=colour, label=name)
        bottom.bar_label(bars, padding=2, fontsize=10)
    bottom.set_xticks(range(len(parties)), [f"{p.name} ({p.party})" for p in parties])
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    peak = max([v for _, values, _ in series for v in values] or [0])
    bottom.set_ylim(0, max(1, peak) * 1.25)
    bottom.set_ylabel("How many in the period")
    bottom.set_title("Missed deadlines, escalations and missed line checks", fontsize=12)
    bottom.legend(loc="upper right", fontsize=9)
    bottom.grid(axis="y", alpha=0.3)
    fig.savefig(str(path), format="png", dpi=dpi)


def _hours(h: float) -> str:
    return f"{h * 60:g} min" if h < 1 else f"{h:g} h"


def _period_words(report: Report) -> str:
    start = report.start or report.first_at
    end = report.end or report.judged_at
    return f"{_when(start) if start else '?'} to {_when(end)}"


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC") if not t.second else t.strftime("%Y-%m-%d %H:%M:%S UTC")


def summary_lines(report: Report) -> list[str]:
    """A few lines for a person: the period and rules, then one paragraph per party."""
    r = report.rules
    lines = [
        f"{report.mechanism}: {_period_words(report)} ({report.entries} entries"
        + (f", {report.withheld} withheld" if report.withheld else "")
        + ")",
        f"rules: notice at least {r.min_notice_s / 60:g} min ahead; acknowledge within {r.ack_deadline_s / 60:g} min",
    ]
    for p in report.parties:
        lt, c, m = p.lead_times, p.conflicts, p.messages
        lead = (
            f"{lt.count} notices, lead time median {_duration(lt.median_s)} (shortest {_duration(lt.min_s)}), "
            f"{lt.below_minimum} below the minimum"
            if lt.count
            else "no notices"
        )
        missed = p.missed_deadlines
        esc = p.escalations
        lines += [
            f"{p.party} ({p.name}): {lead}",
            f"  {_acked(c, 'conflicts')}; {_acked(m, 'hotline messages')}",
            f"  missed deadlines: {len(missed)}"
            + (f" ({', '.join(d.id for d in missed)})" if missed else "")
            + f"; escalations: {esc.count}"
            + (f" (highest: {esc.highest_rung_name})" if esc.count else "")
            + f"; line checks missed: {len(p.missed_line_checks)} of {p.line_checks.due}",
        ]
    return lines


def _acked(a: Acknowledgements, what: str) -> str:
    if a.due == 0:
        return f"no {what} to acknowledge"
    return f"{a.acknowledged} of {a.due} {what} acknowledged (median {_duration(a.median_s)})"


def _duration(seconds: float | None) -> str:
    """A duration for a person.

    >>> _duration(None), _duration(42), _duration(150), _duration(7200), _duration(-600)
    ('-', '42 s', '2.5 min', '2.0 h', '-10 min')
    """
    if seconds is None:
        return "-"
    a = abs(seconds)
    if a < 60:
        return f"{seconds:.0f} s"
    if a < 2 * 3600:
        return f"{seconds / 60:.1f}".rstrip("0").rstrip(".") + " min"
    return f"{seconds / 3600:.1f} h"
