"""Transitional: moved to deconflict.analysis.report; deleted when every import uses the new home."""

from deconflict.analysis.report import (
    CHART_SIZE_PX,
    CSV_COLUMNS,
    compliance_report,
    report_to_json,
    summary_lines,
    write_chart,
    write_csv,
)

__all__ = [
    "CHART_SIZE_PX",
    "CSV_COLUMNS",
    "compliance_report",
    "report_to_json",
    "summary_lines",
    "write_chart",
    "write_csv",
]
