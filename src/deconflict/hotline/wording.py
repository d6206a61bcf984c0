"""Agreed wording: the catalogue of standard messages, and a message put into a reader's language.

The catalogue (``data/hotline_templates.toml``) gives each standard message its type and its
wording in every member language, with ``{param}`` placeholders; :func:`load_templates`
checks it. :func:`render` words a standard message in one language, :func:`free_text` keeps
a member's own words as written. Parameter values are worded once, identically in every
language (Western digits, UTC times); rung names and resolutions are shown in the reader's
language when the bundled lists know them.
"""

from __future__ import annotations

import math
import re
import string
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime  # noqa: F401 (UTC: used by the doctests)
from functools import cache
from pathlib import Path
from types import MappingProxyType

from deconflict.clock import ensure_utc, parse_utc
from deconflict.errors import InvalidInput
from deconflict.hotline.messages import LANGUAGES, NEEDS_ACK, MessageType, Rendered, Template, is_rtl

__all__ = [
    "RUNG_NAMES_PATH",
    "TEMPLATES_PATH",
    "TIME_PARAMS",
    "ParamValue",
    "bundled_templates",
    "format_param",
    "format_time",
    "free_text",
    "load_templates",
    "render",
    "rung_name",
    "worded_params",
]

_DATA = Path(__file__).parent.parent / "data"
"""The bundled data files of :mod:`deconflict`."""
TEMPLATES_PATH = _DATA / "hotline_templates.toml"
"""The bundled agreed wording."""

_FSI = "\u2068"  # FIRST STRONG ISOLATE
_PDI = "\u2069"  # POP DIRECTIONAL ISOLATE


def _placeholders(where: str, wording: str) -> set[str]:
    """The simple ``{name}`` placeholders of a wording; anything fancier is refused."""
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(wording))
    except ValueError as e:
        raise InvalidInput(f"{where}: malformed braces ({e})", field="templates") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise InvalidInput(
                f"{where}: placeholder {{{name}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} is not a plain {{name}}",
                field="templates",
            )
        names.add(name)
    return names


def _template(template_id: str, raw: object) -> Template:
    where = f"template {template_id}"
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}: expected a table with type, needs_ack, params and text", field="templates")
    unknown = set(raw) - {"type", "needs_ack", "params", "text"}
    if unknown:
        raise InvalidInput(f"{where}: unknown keys {', '.join(sorted(unknown))}", field="templates")
    given = raw.get("type")
    try:
        mtype = MessageType(given if isinstance(given, str) else "")
    except ValueError:
        raise InvalidInput(
            f"{where}: type {raw.get('type')!r} is not one of {', '.join(t.value for t in MessageType)}",
            field="templates",
        ) from None
    if mtype is MessageType.FREE_TEXT:
        raise InvalidInput(f"{where}: free text has no template", field="templates")
    ack = raw.get("needs_ack")
    if not isinstance(ack, bool):
        raise InvalidInput(f"{where}: needs_ack must be true or false", field="templates")
    if ack != (mtype in NEEDS_ACK):
        raise InvalidInput(
            f"{where}: needs_ack = {str(ack).lower()} disagrees with type {mtype.value} "
            f"(acknowledged types: {', '.join(sorted(NEEDS_ACK))})",
            field="templates",
        )
    params = raw.get("params")
    if not isinstance(params, list) or not all(isinstance(p, str) and p.isidentifier() for p in params):
        raise InvalidInput(f"{where}: params must be a list of names", field="templates")
    if len(set(params)) != len(params):
        raise InvalidInput(f"{where}: params lists a name twice", field="templates")
    text = raw.get("text")
    if not isinstance(text, dict):
        raise InvalidInput(f"{where}: text must be a table of wording by language", field="templates")
    extra_langs = set(text) - set(LANGUAGES)
    if extra_langs:
        raise InvalidInput(
            f"{where}: language {', '.join(sorted(extra_langs))} is not supported ({', '.join(LANGUAGES)})",
            field="templates",
        )
    declared = set(params)
    for lang in LANGUAGES:
        wording = text.get(lang)
        if not isinstance(wording, str) or not wording.strip():
            raise InvalidInput(f"{where}: no wording in language {lang}", field="templates")
        found = _placeholders(f"{where}, language {lang}", wording)
        if found != declared:
            problems = []
            if declared - found:
                problems.append(f"missing {', '.join('{' + p + '}' for p in sorted(declared - found))}")
            if found - declared:
                problems.append(f"undeclared {', '.join('{' + p + '}' for p in sorted(found - declared))}")
            raise InvalidInput(f"{where}, language {lang}: placeholders {'; '.join(problems)}", field="templates")
    return Template(
        id=template_id,
        type=mtype,
        needs_ack=ack,
        params=tuple(params),
        text=MappingProxyType({lang: text[lang] for lang in LANGUAGES}),
    )


def load_templates(path: Path | str | None = None) -> Mapping[str, Template]:
    """Read and check a templates file (the bundled one by default); raise InvalidInput naming what is wrong.

    Every template must have wording in all of ``LANGUAGES``, each with exactly the
    ``{placeholders}`` its ``params`` declare.

    >>> load_templates()["holding"].type
    <MessageType.RESPONSE: 'response'>
    """
    source = Path(path) if path is not None else TEMPLATES_PATH
    try:
        doc = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as e:
        raise InvalidInput(f"templates {source}: cannot read ({e.strerror})", field="templates") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidInput(f"templates {source}: not valid TOML ({e})", field="templates") from None
    if not doc:
        raise InvalidInput(f"templates {source}: no templates", field="templates")
    return MappingProxyType({tid: _template(tid, raw) for tid, raw in doc.items()})


@cache
def bundled_templates() -> Mapping[str, Template]:
    """The bundled templates, read and checked once on first use."""
    return load_templates()


ParamValue = str | int | float | datetime


def format_time(value: datetime) -> str:
    """An instant as UTC ISO 8601 without the zone letter (the wording says "UTC"); seconds only when not zero.

    >>> format_time(datetime(2025, 4, 9, 8, 30, tzinfo=UTC))
    '2025-04-09T08:30'
    """
    t = ensure_utc(value, field="time")
    # strftime's "%Y-%m-%dT%H:%M[:%S]" for the years ensure_utc takes, at a third of its cost (an alert words two)
    return t.isoformat()[: 19 if t.second or t.microsecond else 16]


TIME_PARAMS = frozenset({"t1", "t2"})
_ZONED_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?([zZ]|[+-]\d\d:?\d\d)")
"""Template parameters that are instants: given as text with a zone, they are worded like a time."""


def format_param(name: str, value: object) -> str:
    """A parameter value as text, identical in every language: Western digits, UTC ISO times.

    >>> format_param("floor", 1500.0), format_param("ceiling", 3000.25), format_param("minutes", 60)
    ('1500', '3000.25', '60')
    >>> format_param("t1", "2025-04-09T20:33:00Z"), format_param("t1", "2025-04-09T23:33:00+03:00")
    ('2025-04-09T20:33', '2025-04-09T20:33')
    >>> format_param("t1", "2025-04-09T20:33"), format_param("place", "T4 +5 km")  # stored form, not a time
    ('2025-04-09T20:33', 'T4 +5 km')
    """
    if value.__class__ is str and name not in TIME_PARAMS and value.strip():  # the most common, checked first
        return value
    if isinstance(value, bool) or value is None:
        raise InvalidInput(f"parameter {name}: expected text, a number or a time, got {value!r}", field=name)
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"parameter {name}: {value} is not a number", field=name)
        return str(int(value)) if value.is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, str):
        if not value.strip():
            raise InvalidInput(f"parameter {name}: empty", field=name)
        if name in TIME_PARAMS and _ZONED_TIME.fullmatch(value.strip()):
            # a time given as text with its zone (JSON has no time type): worded once, as UTC, like a time
            return format_time(parse_utc(value.strip(), field=name))
        return value
    raise InvalidInput(f"parameter {name}: expected text, a number or a time, got {type(value).__name__}", field=name)


RUNG_NAMES_PATH = _DATA / "rung_names.toml"
"""The usual rung names of an escalation ladder in each member language."""


@cache
def _rung_names() -> Mapping[str, Mapping[str, str]]:
    return MappingProxyType(tomllib.loads(RUNG_NAMES_PATH.read_text(encoding="utf-8")))


@cache
def _resolution_names() -> Mapping[str, Mapping[str, str]]:
    """How a conflict was resolved (a resolution value) in each member language."""
    path = _DATA / "resolution_names.toml"
    return MappingProxyType(tomllib.loads(path.read_text(encoding="utf-8")))


def rung_name(name: str, lang: str) -> str:
    """A rung's name in the reader's language when the bundled list knows it, else as the rules give it.

    >>> rung_name("operations chief", "tr"), rung_name("chief of staff", "tr")
    ('harekât başkanı', 'chief of staff')
    """
    return _rung_names().get(name, {}).get(lang, name)


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise InvalidInput(f"language {lang!r} is not supported; use one of {', '.join(LANGUAGES)}", field="lang")


def render(
    template_id: str,
    lang: str,
    params: Mapping[str, object],
    *,
    templates: Mapping[str, Template] | None = None,
) -> Rendered:
    """A standard message in one language; raise InvalidInput naming a missing or extra parameter.

    >>> r = render("holding", "tr", {"ref": "C7"})
    >>> r.text, r.rtl, r.needs_ack
    ('C7 anlaşıldı. Faaliyetimizi yeni bir bildirime kadar bekletiyoruz.', False, False)
    """
    tpl, values = worded_params(template_id, params, templates=templates)
    _check_lang(lang)
    shown = dict(values)  # what the reader sees; ``values`` are stored as given, so any reader can re-word them
    if "rung" in shown:
        shown["rung"] = rung_name(shown["rung"], lang)
    if "how" in shown:
        shown["how"] = _resolution_names().get(shown["how"], {}).get(lang, shown["how"])
    wording = tpl.text[lang]
    rtl = is_rtl(lang)
    text = wording.format_map(shown)
    display = wording.format_map({k: f"{_FSI}{v}{_PDI}" for k, v in shown.items()}) if rtl else text
    return Rendered(
        text=text,
        lang=lang,
        rtl=rtl,
        template=template_id,
        params=MappingProxyType(values),
        type=tpl.type,
        needs_ack=tpl.needs_ack,
        display=display,
    )


def worded_params(
    template_id: str, params: Mapping[str, object], *, templates: Mapping[str, Template] | None = None
) -> tuple[Template, dict[str, str]]:
    """A standard message's template and its parameters as the record stores them (:func:`format_param`),
    checked as :func:`render` checks them, without wording it in any language: what the service keeps of a
    message it sends itself (each reader's page words it in the reader's language).

    >>> worded_params("holding", {"ref": "C7"})[1]
    {'ref': 'C7'}
    """
    table = bundled_templates() if templates is None else templates
    tpl = table.get(template_id)
    if tpl is None:
        raise InvalidInput(
            f"unknown message template {template_id!r}; known: {', '.join(sorted(table))}", field="template"
        )
    missing = [p for p in tpl.params if p not in params]
    if missing:
        raise InvalidInput(
            f"template {template_id} needs parameter {', '.join(missing)} (it takes {', '.join(tpl.params)})",
            field=missing[0],
        )
    extra = sorted(set(params) - set(tpl.params))
    if extra:
        raise InvalidInput(
            f"template {template_id} takes no parameter {', '.join(extra)} (it takes {', '.join(tpl.params)})",
            field=extra[0],
        )
    return tpl, {p: format_param(p, params[p]) for p in tpl.params}


def free_text(text: str, lang: str) -> Rendered:
    """A free-text message: kept exactly as written, in its own language, marked as free text.

    >>> m = free_text("שלום", "he")
    >>> m.free_text, m.rtl, m.template
    (True, True, None)
    """
    _check_lang(lang)
    given: object = text  # checked as given: callers may pass anything
    if not isinstance(given, str) or not given.strip():
        raise InvalidInput("free text is empty", field="text")
    rtl = is_rtl(lang)
    return Rendered(
        text=text,
        lang=lang,
        rtl=rtl,
        template=None,
        params=MappingProxyType({}),
        type=MessageType.FREE_TEXT,
        needs_ack=False,
        free_text=True,
        display=f"{_FSI}{text}{_PDI}" if rtl else text,
    )
