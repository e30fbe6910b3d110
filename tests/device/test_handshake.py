"""Sans-I/O handshake parsing: header rules, what a connection keeps, and fuzzing."""

from devtest import raises
from wirepeer import upgrade_request

from microws.errors import InvalidHandshake
from microws.handshake import app_headers, parse_head
from microws.handshake_server import check_request, parse_request


def test_header_names_are_case_insensitive_and_repeats_are_joined():
    start, h = parse_head(b"GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\nHOST: h\r\n\r\n")
    assert start == "GET / HTTP/1.1"
    assert h == {"x-a": "1, 2", "host": "h"}


def test_connection_keeps_only_application_headers():
    head = upgrade_request("/p", extra=["Authorization: Bearer t", "Cookie: a=b"])
    kept = parse_head(app_headers(parse_request(head).headers), False)[1]
    assert kept == {"host": "127.0.0.1", "authorization": "Bearer t", "cookie": "a=b"}


def test_valid_request_yields_accept_and_chosen_subprotocol():
    req = parse_request(upgrade_request(extra=["Sec-WebSocket-Protocol: b, a"]))
    assert check_request(req, ["a", "b"]) == ("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "b")


def test_subprotocols_are_matched_case_sensitively_and_answered_as_the_client_wrote_them():
    req = parse_request(upgrade_request(extra=["Sec-WebSocket-Protocol: Chat , mqtt"]))
    assert check_request(req, ["chat", "mqtt"])[1] == "mqtt"  # not "Chat": another name
    assert check_request(req, ["Chat"])[1] == "Chat"
    assert check_request(req, ["CHAT", "MQTT"])[1] is None
    assert check_request(parse_request(upgrade_request()), ["chat"])[1] is None  # none offered


def test_obsolete_line_folding_is_refused():
    with raises(InvalidHandshake) as e:
        parse_head(b"GET / HTTP/1.1\r\nX-A: 1\r\n  continued\r\n\r\n")
    assert e.value.status == 400


def test_random_heads_only_ever_raise_invalid_handshake():
    state = 7
    pieces = [b"GET ", b"POST ", b"/", b" HTTP/1.1", b"HTTP/1.0", b"\r\n", b": ", b":", b"Host",
              b"Upgrade", b"websocket", b"Connection", b"Sec-WebSocket-Key", b"Sec-WebSocket-Version",
              b"13", b"dGhlIHNhbXBsZSBub25jZQ==", b"\xff\xfe", b" ", b"\t", b"x" * 50, b","]
    for case in range(600):
        head = b""
        for _ in range(3 + case % 25):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            head += pieces[(state >> 16) % len(pieces)]
        head = upgrade_request() if case % 50 == 0 else head + b"\r\n\r\n"
        try:
            request = parse_request(head)
            check_request(request, ["a"], ["http://ok"])
        except InvalidHandshake as e:
            assert 400 <= e.status < 500, (head, e.status)


def test_request_headers_with_cr_or_lf_raise_value_error():
    # A value with CR or LF would smuggle in a header line of its own (and an app may
    # pass user input as a header); the error text must not show the value.
    from microws.handshake_client import build_request

    for headers in (
        {"X-Token": "abc\r\nX-Injected: yes"},
        {"X-Token": "abc\nX-Injected: yes"},
        [("X-A\r\nX-B", "1")],
        [("X-A", "1\r")],
    ):
        with raises(ValueError) as e:
            build_request("h", "/", "k", headers=headers)
        assert "abc" not in str(e.value) and "yes" not in str(e.value)
    assert b"\r\nX-Token: a b\r\n" in build_request("h", "/", "k", headers={"X-Token": "a b"})
