"""The hotline: standard phrases and free text, acknowledgements, line status."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from deconflict.api.deps import Caller, MemberDep, ServiceDep, SigningDep
from deconflict.api.schemas import ErrorOut, MessageOut, TemplateOut, WaitingOut
from deconflict.hotline import bundled_templates, is_rtl
from deconflict.service import MEMBER_PHRASES, Service
from deconflict.service.hotline import Outgoing

router = APIRouter(tags=["hotline"], responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}})


class MessageIn(BaseModel):
    """A standard message (``template`` + ``params``, agreed wording) or ``text`` (free text, kept as written)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"template": "holding", "params": {"ref": "C1"}},
                {"text": "Please call on the secure line.", "to": ["IL"]},
            ]
        },
    )
    template: str | None = Field(None, max_length=64, description="Template id, e.g. holding, acknowledged_amending.")
    params: dict[str, StrictStr | StrictInt | StrictFloat] | None = Field(
        None, description="The template's parameters."
    )
    text: str | None = Field(None, max_length=4000, description="Free text, shown with its original language.")
    lang: str | None = Field(None, max_length=8, description="Language of free text (default: the sender's).")
    to: list[str] | None = Field(
        None,
        max_length=20,
        description="Party codes (default: parties and facilitator; for a phrase whose ref is a conflict, a "
        "message or an activity, the parties who may see it and the facilitator).",
    )
    about: dict[str, str] | None = Field(
        None,
        description='What it is about: {"kind": activity, conflict, zone or message, "id": its id}, e.g. '
        '{"kind": "conflict", "id": "C1"}; one the sender may see.',
    )


@router.get(
    "/mechanisms/{mechanism_id}/messages",
    summary="The channel, in the caller's language",
    responses={200: {"model": list[MessageOut], "description": "The messages the caller may read."}},
)
def list_messages(
    caller: MemberDep,
    service: ServiceDep,
    after: Annotated[int, Query(ge=0, le=2**62, description="Only messages recorded after this sequence number.")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000, description="The most messages in the answer.")] = 500,
    newest: Annotated[
        bool,
        Query(description="The last `limit` messages (after `after`) instead of the first: the channel as it ends."),
    ] = False,
    awaiting: Annotated[
        bool,
        Query(
            description="Only the messages that wait on the caller's party for its acknowledgement (sent to it, "
            "not acknowledged by it, not closed), whatever their age."
        ),
    ] = False,
) -> JSONResponse:
    """Each message: type, sender, recipients, text in the caller's language (``rtl`` for Hebrew and
    Arabic), the original of free text, deadline, acknowledgements and escalation steps. In the record's
    order, oldest first: the first ``limit`` after ``after`` (page on with the last ``seq``), or with
    ``newest=true`` the last ``limit`` (what a duty officer's channel shows). With ``awaiting=true``, only
    what waits on the caller's party (the page reads these too, however old)."""
    found = service.messages(
        caller.mechanism_id, reader=caller.member, after_seq=after, limit=limit, newest=newest, awaiting=awaiting
    )
    return JSONResponse(found)


@router.post(
    "/mechanisms/{mechanism_id}/messages",
    status_code=201,
    summary="Send a message",
    responses={
        201: {"model": MessageOut, "description": "Recorded."},
        404: {"model": ErrorOut},
        422: {"model": ErrorOut},
    },
)
def send_message(caller: MemberDep, service: ServiceDep, mode: SigningDep, message: MessageIn) -> JSONResponse:
    sent = service.send_message(
        mechanism_id=caller.mechanism_id,
        actor=caller.member.id,
        template=message.template,
        params=message.params,
        text=message.text,
        lang=message.lang,
        to=message.to,
        about=message.about,
        mode=mode,
    )
    return JSONResponse(sent, status_code=201)


def send_messages(
    service: Service, mechanism_id: str, calls: list[tuple[Caller, MessageIn]]
) -> Iterator[list[tuple[int, JSONResponse | Exception]]]:
    """What :func:`send_message` answers to each of several plain requests (no signing header) to one
    mechanism, sent together (:meth:`Service.send_messages`): its 201, or the error it raised, by the
    request's place in ``calls``, as the answers are on the disk."""
    outgoing = [Outgoing(actor=caller.member.id, **dict(message)) for caller, message in calls]
    for answers in service.send_messages(mechanism_id=mechanism_id, messages=outgoing):
        yield [(i, a if isinstance(a, Exception) else JSONResponse(a, status_code=201)) for i, a in answers]


@router.post(
    "/mechanisms/{mechanism_id}/messages/{message_id}/acknowledge",
    summary="Acknowledge a message addressed to the caller's party",
    response_model=None,
    responses={
        200: {"model": MessageOut, "description": "Recorded: the message now."},
        404: {"model": ErrorOut},
        409: {"model": ErrorOut},
    },
)
def acknowledge_message(caller: MemberDep, service: ServiceDep, mode: SigningDep, message_id: str) -> dict[str, Any]:
    return service.acknowledge_message(
        mechanism_id=caller.mechanism_id, actor=caller.member.id, message_id=message_id, mode=mode
    )


@router.get(
    "/mechanisms/{mechanism_id}/templates",
    summary="The standard phrases, worded in the caller's language",
    response_model=None,
    responses={200: {"model": list[TemplateOut], "description": "Every standard phrase."}},
)
def templates(caller: MemberDep) -> list[dict[str, Any]]:
    """Each template: id, message type, whether it needs an acknowledgement, its parameters and its agreed
    wording in the caller's language with ``{param}`` placeholders (``rtl`` for Hebrew and Arabic), and
    whether the caller may send it (``sendable``: alerts, line checks and escalations are the service's own;
    a facilitator has no activity to hold, amend or proceed with)."""
    lang = caller.member.language
    sendable = MEMBER_PHRASES[caller.member.role]
    return [
        {
            "id": t.id,
            "type": t.type.value,
            "needs_ack": t.needs_ack,
            "params": list(t.params),
            "text": t.text.get(lang, t.text["en"]),
            "lang": lang if lang in t.text else "en",
            "rtl": is_rtl(lang) if lang in t.text else False,
            "sendable": t.id in sendable,
        }
        for t in bundled_templates().values()
    ]


@router.get(
    "/mechanisms/{mechanism_id}/waiting",
    summary="What waits on the caller's party now",
    response_model=None,
    responses={200: {"model": WaitingOut, "description": "What waits on the party, soonest deadline first."}},
)
def waiting(caller: MemberDep, service: ServiceDep) -> dict[str, Any]:
    """The conflicts the caller's party must acknowledge (each with its alerts) and the other messages it
    must answer, soonest deadline first, each with ``overdue``, the ladder's rung reached so far and, if
    nobody answers, when it climbs next and to whom (``next_step_at``, ``next_rung_name``; null at the last
    rung): what a duty officer taking over the shift must see first."""
    return service.waiting(caller.mechanism_id, reader=caller.member)


@router.get("/mechanisms/{mechanism_id}/lines", summary="Each party's line: up, pending, late or down")
def lines(caller: MemberDep, service: ServiceDep) -> dict[str, str]:
    return service.line_status(caller.mechanism_id)
