"""HEAD wherever GET is (RFC 9110 §9.3.2): a monitor's ``HEAD /healthz``, an engineer's ``curl -I`` of the page
or of an API resource get what a GET gets (status and header fields) without its content, were answered 405;
an event stream's HEAD ends at once and leaves no stream open; a path that takes no GET still answers 405,
naming what it takes."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack

import httpx
import pytest
from support.builders import A
from support.live import LiveServer, auth, post_notice

from deconflict.api.head import HeadAsGet

VARYING = {"date", "content-length"}
"""Header fields that may differ between two answers of the same resource: the time, and the length of a
document that names the instant it was read (the length is compared where the content does not change)."""


@pytest.fixture
def noticed(live: LiveServer, tokens: dict[str, str]) -> dict[str, str]:
    """Two conflicting notices, so that the resources read have content."""
    post_notice(live, tokens["IL"], "air_sortie", 34.5, 37.6)
    post_notice(live, tokens["TR"], "uav_patrol", 34.5, 37.6)
    return tokens


def _same_head(head: httpx.Response, get: httpx.Response, *, length: bool = True) -> None:
    assert head.status_code == get.status_code
    assert head.content == b""
    fields = {k: v for k, v in head.headers.items() if k not in VARYING}
    assert fields == {k: v for k, v in get.headers.items() if k not in VARYING}
    if length and "content-length" in get.headers:
        assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.content))


@pytest.mark.parametrize(
    ("path", "who", "length"),
    [
        ("/", None, True),  # the page
        ("/healthz", None, True),
        ("/readyz", None, False),  # (its checks' ages change between two reads)
        ("/openapi.json", None, True),
        ("/web/i18n/en.json", None, True),  # a file of the page, as StaticFiles answers it
        ("/api/v1/mechanisms", "IL", True),
        (f"{A}/activities", "TR", True),
        (f"{A}/conflicts", "IL", True),
        (f"{A}/record", "IL", True),
        (f"{A}/activities", None, True),  # 401, as a GET without a token
        (f"{A}/activities/IL-0099", "IL", True),  # 404, as the GET
        ("/no/such/page", None, True),
    ],
)
def test_a_head_is_answered_as_the_get_without_its_content(
    live: LiveServer, noticed: dict[str, str], client: httpx.Client, path: str, who: str | None, length: bool
) -> None:
    headers = auth(noticed[who]) if who else {}
    head = client.head(path, headers=headers)
    get = client.get(path, headers=headers)
    assert head.status_code != 405
    _same_head(head, get, length=length)


def test_a_large_answer_compressed_for_a_get_is_compressed_alike_for_its_head(
    live: LiveServer, noticed: dict[str, str], client: httpx.Client
) -> None:
    for i in range(40):  # a record past the size from which answers are compressed (GZIP_MIN_BYTES)
        post_notice(live, noticed["IL" if i % 2 else "TR"], "uav_patrol", 34.5, 37.0 + i * 0.03, title=f"n{i}")
    gz = {**auth(noticed["IL"]), "Accept-Encoding": "gzip"}
    head = client.head(f"{A}/record", headers=gz)
    get = client.get(f"{A}/record", headers=gz)
    assert get.headers["content-encoding"] == "gzip"
    _same_head(head, get, length=False)


def test_the_head_of_an_event_stream_ends_at_once_and_holds_no_stream(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client
) -> None:
    limit = live.settings.max_streams_per_member
    for _ in range(limit + 2):  # more than a member may hold open at once
        head = client.head(f"{A}/events", headers=auth(tokens["IL"]), timeout=5)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"].startswith("text/event-stream")
    hub = live.app.state.hub
    assert hub.open_streams() == 0
    with ExitStack() as held:
        for n in range(1, limit + 1):
            stream = held.enter_context(client.stream("GET", f"{A}/events", headers=auth(tokens["IL"])))
            assert stream.status_code == 200  # none refused as one stream too many
            assert hub.open_streams() == n
        # at the limit, a HEAD is told what the GET would be
        head = client.head(f"{A}/events", headers=auth(tokens["IL"]), timeout=5)
        get = client.get(f"{A}/events", headers=auth(tokens["IL"]), timeout=5)
        assert head.status_code == get.status_code == 429
        assert head.headers["retry-after"] == get.headers["retry-after"]
        assert client.head(f"{A}/events", headers=auth(tokens["TR"]), timeout=5).status_code == 200


def test_a_path_that_takes_no_get_answers_a_head_405_and_every_405_names_head_beside_get(
    live: LiveServer, tokens: dict[str, str], client: httpx.Client
) -> None:
    head = client.head(f"{A}/conflicts/C1/acknowledge", headers=auth(tokens["IL"]))
    assert head.status_code == 405 and head.headers["allow"] == "POST"
    delete = client.delete(f"{A}/activities", headers=auth(tokens["IL"]))
    assert delete.status_code == 405 and delete.headers["allow"] == "GET, HEAD, POST"
    assert delete.json()["detail"] == "method DELETE is not allowed here; this path takes GET, HEAD, POST"
    # outside the API's document: the framework's answer, with HEAD once (static files and the document name it)
    for method, path in (("POST", "/healthz"), ("POST", "/openapi.json"), ("PUT", "/web/i18n/en.json")):
        outside = client.request(method, path)
        assert outside.status_code == 405 and outside.headers["allow"] == "GET, HEAD", (path, outside.headers)


def test_nothing_but_a_head_is_changed() -> None:
    """Every other request reaches the application as it came: the same scope, the same send."""
    seen: list[tuple[dict[str, object], object]] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append((scope, send))

    async def send(_: object) -> None:
        return None

    for method in ("GET", "POST", "DELETE"):
        scope = {"type": "http", "method": method, "path": "/"}
        asyncio.run(HeadAsGet(app)(scope, None, send))  # type: ignore[arg-type]
        assert seen[-1][0] is scope and seen[-1][1] is send


def test_an_answer_that_goes_on_after_its_head_is_stopped_there() -> None:
    """An application that streams (a GET that goes on for as long as it is read) is stopped once its head is
    sent, as a client that left stops it; what it sent after is not passed on, and no error comes out."""
    sent: list[dict[str, object]] = []
    stopped: list[BaseException] = []

    async def streaming(scope: dict[str, object], receive: object, send: object) -> None:
        assert scope["method"] == "GET"
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        try:
            while True:
                await send({"type": "http.response.body", "body": b"data: x\n\n", "more_body": True})  # type: ignore[operator]
        except OSError as e:
            stopped.append(e)
            raise

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    asyncio.run(HeadAsGet(streaming)({"type": "http", "method": "HEAD", "path": "/s"}, None, send))  # type: ignore[arg-type]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert len(stopped) == 1
