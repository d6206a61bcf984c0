"""Transitional: moved to deconflict.analysis.report; deleted when every import uses the new home.

The outputs (JSON, CSV, chart, summary) moved to deconflict.analysis.report_output.
"""

from deconflict.analysis.report import compliance_report
from deconflict.analysis.report_output import (
    CHART_SIZE_PX,
    CSV_COLUMNS,
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
