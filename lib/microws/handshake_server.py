"""Sans-I/O opening handshake, server side: parse and check the upgrade request, the 101 answer."""

import binascii

from .errors import InvalidHandshake
from .frames import const  # MicroPython's, or a stand-in on CPython
from .handshake import accept_key, header_tokens, parse_head

# Error texts, by number into texts.T (see errors.error_text).
_E_REQUEST_LINE = const(20)
_E_NOT_HTTP11 = const(21)
_E_NOT_GET = const(22)
_E_NO_UPGRADE = const(23)
_E_NO_CONNECTION_UPGRADE = const(24)
_E_NO_HOST = const(25)
_E_VERSION = const(26)
_E_KEY = const(27)
_E_ORIGIN = const(28)


class Request:
    """A parsed HTTP request head: ``method``, ``path`` (with query), ``headers``."""

    def __init__(self, method, path, headers):
        self.method = method
        self.path = path
        self.headers = headers

    def is_upgrade(self):
        """True when the client asks for a WebSocket upgrade."""
        h = self.headers
        return "websocket" in header_tokens(h.get("upgrade")) and "upgrade" in header_tokens(h.get("connection"))


def parse_request(head):
    """Parse a request head into a Request; InvalidHandshake(400/414/431) on abuse, and 400
    without exactly one Host."""
    start, headers = parse_head(head)
    parts = start.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise InvalidHandshake(_E_REQUEST_LINE, 400)
    if parts[2] != "HTTP/1.1":
        raise InvalidHandshake(_E_NOT_HTTP11, 400)
    # Exactly one Host (RFC 9112 3.2), for upgrades and plain requests alike; repeats
    # arrive joined with ", ", which no host[:port] holds.
    if "," in headers.get("host", ","):
        raise InvalidHandshake(_E_NO_HOST, 400)
    return Request(parts[0], parts[1], headers)


def check_request(request, subprotocols=None, origins=None):
    """Validate a client upgrade; returns (accept value, chosen subprotocol or None)."""
    h = request.headers
    if request.method != "GET":
        raise InvalidHandshake(_E_NOT_GET, 405)
    if "websocket" not in header_tokens(h.get("upgrade")):
        raise InvalidHandshake(_E_NO_UPGRADE, 426)
    if "upgrade" not in header_tokens(h.get("connection")):
        raise InvalidHandshake(_E_NO_CONNECTION_UPGRADE, 400)
    if h.get("sec-websocket-version") != "13":
        raise InvalidHandshake(_E_VERSION, 426)
    key = h.get("sec-websocket-key", "")
    try:
        raw = binascii.a2b_base64(key)
    except ValueError:
        raw = b""
    if len(raw) != 16 or "," in key:
        raise InvalidHandshake(_E_KEY, 400)
    if origins is not None:
        origin = h.get("origin")
        if origin not in origins:
            raise InvalidHandshake(_E_ORIGIN, 403, origin)
    chosen = None
    if subprotocols:
        # The client's first preference we support, compared and answered exactly as
        # the client spelled it: the answer must be one of its values (RFC 6455 4.2.2),
        # and subprotocol names are case-sensitive.
        for p in h.get("sec-websocket-protocol", "").split(","):
            p = p.strip()
            if p in subprotocols:
                chosen = p
                break
    return accept_key(key), chosen


def accept_response(accept, subprotocol=None):
    """The 101 response bytes completing a server-side handshake."""
    # One format, not responses.build_response's list of lines: fewer temporaries per connection.
    proto = "Sec-WebSocket-Protocol: %s\r\n" % subprotocol if subprotocol else ""
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: %s\r\n%s\r\n" % (accept, proto)
    ).encode()
