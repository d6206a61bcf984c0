"""The hotline's pure core: message types, agreed wording, the escalation ladder and line checks.

No storage and no clock: every function that depends on time takes ``now`` (an aware
UTC datetime), and everything it answers comes from stored instants (when a message
was sent, when it was acknowledged), so a service restarted at any moment computes
the same deadlines and the same missing escalation steps as one that never stopped.

===============================================  ==============================================
:mod:`~deconflict.hotline.messages`              message types, which need an acknowledgement,
                                                 languages, :class:`Template`, :class:`Rendered`
:mod:`~deconflict.hotline.wording`               the catalogue of standard messages, and a
                                                 message worded in a reader's language
:mod:`~deconflict.hotline.ladder`                the escalation ladder (its schedule is there)
:mod:`~deconflict.hotline.line_checks`           line checks and the state of a party's line
===============================================  ==============================================

Everything public is importable from ``deconflict.hotline`` itself.
"""

from __future__ import annotations

from deconflict.hotline.ladder import (
    Escalation,
    EscalationStep,
    RungWindow,
    due_steps,
    escalation_state,
    ladder_schedule,
)
from deconflict.hotline.line_checks import LineState, line_check_due, line_state, line_transition, next_line_check_at
from deconflict.hotline.messages import (
    LANGUAGES,
    NEEDS_ACK,
    RTL_LANGUAGES,
    MessageType,
    Rendered,
    Template,
    is_rtl,
    needs_ack,
)
from deconflict.hotline.wording import (
    RUNG_NAMES_PATH,
    TEMPLATES_PATH,
    TIME_PARAMS,
    ParamValue,
    bundled_templates,
    format_param,
    format_time,
    free_text,
    load_templates,
    render,
    rung_name,
    worded_params,
)

__all__ = [
    "LANGUAGES",
    "NEEDS_ACK",
    "RTL_LANGUAGES",
    "RUNG_NAMES_PATH",
    "TEMPLATES_PATH",
    "TIME_PARAMS",
    "Escalation",
    "EscalationStep",
    "LineState",
    "MessageType",
    "ParamValue",
    "Rendered",
    "RungWindow",
    "Template",
    "bundled_templates",
    "due_steps",
    "escalation_state",
    "format_param",
    "format_time",
    "free_text",
    "is_rtl",
    "ladder_schedule",
    "line_check_due",
    "line_state",
    "line_transition",
    "load_templates",
    "needs_ack",
    "next_line_check_at",
    "render",
    "rung_name",
    "worded_params",
]
