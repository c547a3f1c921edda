"""The sandbox inbox: portals post messages, clients read them back by address and seq."""

from __future__ import annotations

import httpx
from parsel import Selector

from portwright.sandbox import SandboxWorld
from portwright.sandbox.inbox import extract_code, specs


def test_messages_are_listed_by_recipient_after_a_seq_with_their_code() -> None:
    """GET /messages filters by address (any case) and since_seq, and extracts 6-digit codes."""
    with (
        SandboxWorld(specs(), seed=1) as world,
        httpx.Client(base_url=world.url("inbox")) as client,
    ):
        first = client.post(
            "/messages", json={"to": "a@example.test", "subject": "Hi", "body": "code 123456."}
        )
        assert first.status_code == 201
        assert first.json() == {"seq": 1, "code": "123456"}
        client.post("/messages", json={"to": "b@example.test", "body": "no code here"})
        client.post("/messages", json={"to": "A@example.test", "channel": "sms", "body": "654321"})
        mine = client.get("/messages", params={"to": "a@example.test"}).json()
        assert [(m["seq"], m["channel"], m["code"]) for m in mine] == [
            (1, "email", "123456"),
            (3, "sms", "654321"),
        ]
        later = client.get("/messages", params={"to": "a@example.test", "since_seq": 1}).json()
        assert [m["seq"] for m in later] == [3]
        assert client.get("/messages", params={"since_seq": "x"}).status_code == 400
        assert [e.key for e in world.ledger("inbox").entries("message")] == ["1", "2", "3"]


def test_a_malformed_message_is_refused_naming_the_field() -> None:
    """A message with an unknown channel is answered 422 naming `channel`."""
    with SandboxWorld(specs(), seed=1) as world:
        r = httpx.post(
            world.url("inbox") + "/messages", json={"to": "x", "channel": "fax", "body": ""}
        )
        assert r.status_code == 422
        assert r.json()["detail"][0]["field"] == "channel"


def test_the_html_view_shows_messages_newest_first() -> None:
    """GET / renders one row per message, newest first, with the extracted code."""
    with (
        SandboxWorld(specs(), seed=1) as world,
        httpx.Client(base_url=world.url("inbox")) as client,
    ):
        client.post("/messages", json={"to": "a@example.test", "body": "first 111111"})
        client.post("/messages", json={"to": "a@example.test", "body": "second 222222"})
        page = Selector(client.get("/", params={"to": "a@example.test"}).text)
        assert page.css("tr.message::attr(data-seq)").getall() == ["2", "1"]
        assert page.css("tr.message td.code::text").getall() == ["222222", "111111"]


def test_extract_code_ignores_longer_numbers() -> None:
    """Only a standalone 6-digit number counts as a code."""
    assert extract_code("ref 1234567 then 42") is None
    assert extract_code("ref 1234567", "use 987654 now") == "987654"
