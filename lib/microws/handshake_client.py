"""Sans-I/O opening handshake, client side: the upgrade request and the check of the answer."""

import binascii
import os

from .errors import InvalidHandshake, error_text
from .frames import const  # MicroPython's, or a stand-in on CPython
from .handshake import accept_key, header_tokens, parse_head

# Error texts, by number into texts.T (see errors.error_text).
_E_STATUS_LINE = const(31)
_E_STATUS = const(32)
_E_RESPONSE_UPGRADE = const(33)
_E_RESPONSE_CONNECTION = const(34)
_E_ACCEPT = const(35)
_E_SUBPROTOCOL = const(36)
_E_EXTENSION = const(37)
_E_HEADER_CRLF = const(47)


def make_key():
    """A fresh Sec-WebSocket-Key: base64 of 16 random bytes."""
    return binascii.b2a_base64(os.urandom(16))[:-1].decode()


def build_request(host_header, path, key, subprotocols=None, headers=None):
    """Client upgrade request bytes."""
    lines = [
        "GET %s HTTP/1.1" % path,
        "Host: %s" % host_header,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: %s" % key,
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocols:
        lines.append("Sec-WebSocket-Protocol: %s" % ", ".join(subprotocols))
    if headers:
        for name, value in headers.items() if hasattr(headers, "items") else headers:
            lines.append("%s: %s" % (name, value))
    head = "\r\n".join(lines)
    # A CR or LF of the caller's would start a header line of its own (header injection,
    # and an app may pass user input): the only ones are the separators. (The error
    # shows no value: it may be a secret.)
    if head.count("\n") >= len(lines) or head.count("\r") >= len(lines):
        raise ValueError(error_text(_E_HEADER_CRLF))
    return (head + "\r\n\r\n").encode()


def check_response(head, key, subprotocols=None):
    """Validate the server's answer; returns (headers dict, chosen subprotocol or None)."""
    start, headers = parse_head(head)
    parts = start.split(" ", 2)
    if len(parts) < 2 or parts[0] != "HTTP/1.1":  # (HTTP/1.0 has no 101)
        raise InvalidHandshake(_E_STATUS_LINE, 0)
    try:
        status = int(parts[1])
    except ValueError:
        raise InvalidHandshake(_E_STATUS_LINE, 0)
    if status != 101:
        raise InvalidHandshake(_E_STATUS, status, status)
    if "websocket" not in header_tokens(headers.get("upgrade")):
        raise InvalidHandshake(_E_RESPONSE_UPGRADE, 0)
    if "upgrade" not in header_tokens(headers.get("connection")):
        raise InvalidHandshake(_E_RESPONSE_CONNECTION, 0)
    if headers.get("sec-websocket-accept") != accept_key(key):
        raise InvalidHandshake(_E_ACCEPT, 0)
    proto = headers.get("sec-websocket-protocol")
    if proto is not None:
        if not subprotocols or proto not in subprotocols:
            raise InvalidHandshake(_E_SUBPROTOCOL, 0, proto)
    if headers.get("sec-websocket-extensions"):
        raise InvalidHandshake(_E_EXTENSION, 0)
    return headers, proto
