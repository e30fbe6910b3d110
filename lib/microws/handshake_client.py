"""Sans-I/O opening handshake, client side: the upgrade request and the check of the answer."""

import binascii
import os

from .errors import InvalidHandshake
from .handshake import accept_key, header_tokens, parse_head


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
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def check_response(head, key, subprotocols=None):
    """Validate the server's answer; returns (headers dict, chosen subprotocol or None)."""
    start, headers = parse_head(head)
    parts = start.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise InvalidHandshake("malformed status line", 0)
    try:
        status = int(parts[1])
    except ValueError:
        raise InvalidHandshake("malformed status line", 0)
    if status != 101:
        raise InvalidHandshake("server answered %d instead of 101" % status, status)
    if "websocket" not in header_tokens(headers.get("upgrade")):
        raise InvalidHandshake("response lacks 'Upgrade: websocket'", 0)
    if "upgrade" not in header_tokens(headers.get("connection")):
        raise InvalidHandshake("response lacks 'Connection: Upgrade'", 0)
    if headers.get("sec-websocket-accept") != accept_key(key):
        raise InvalidHandshake("wrong Sec-WebSocket-Accept", 0)
    proto = headers.get("sec-websocket-protocol")
    if proto is not None:
        if not subprotocols or proto not in subprotocols:
            raise InvalidHandshake("server chose a subprotocol we did not offer: %s" % proto, 0)
    if headers.get("sec-websocket-extensions"):
        raise InvalidHandshake("server chose an extension we did not offer", 0)
    return headers, proto
