"""Sans-I/O opening handshake (RFC 6455 section 4): what both sides share, and the server side.

The client side (request, response check) is in ``handshake_client``, so a board
running only a server, or only a client, keeps only its half in RAM.

Parsing is bounded (request line, header bytes, header count) and every failure
raises ``InvalidHandshake`` carrying the HTTP status a server should answer with.
"""

import binascii
import hashlib

from .errors import InvalidHandshake

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_LINE = 4096  # request line / status line
MAX_HEADERS = 64
MAX_HEAD_SIZE = 8192  # whole request or response head

REASONS = {101: "Switching Protocols", 200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           426: "Upgrade Required", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}


def accept_key(key):
    """The Sec-WebSocket-Accept value for ``key``."""
    digest = hashlib.sha1(key.encode() + GUID).digest()
    return binascii.b2a_base64(digest)[:-1].decode()


def header_tokens(value):
    """Lower-cased comma-separated tokens of a header value."""
    return [t.strip().lower() for t in value.split(",")] if value else []


def parse_head(head, has_start=True):
    """Split a request/response head into (start line, headers dict with lower-case names).

    Repeated headers are joined with ", ". Enforces the line and count limits.
    """
    # Line by line from the bytes: the whole head is never held a second time as text
    # (a list of every line), which is what a handshake's peak heap is made of.
    end = len(head)
    i = 0
    start = ""
    if has_start:
        i = head.find(b"\r\n")
        if i < 0:
            i = end
        if i > MAX_LINE:
            raise InvalidHandshake("start line too long", 414)
        start = _text(head[:i])
        i += 2
    headers = {}
    count = 0
    while i < end:
        j = head.find(b"\r\n", i)
        if j < 0:
            j = end
        if j > i:
            count += 1
            if count > MAX_HEADERS:
                raise InvalidHandshake("too many headers", 431)
            line = _text(head[i:j])
            colon = line.find(":")
            if colon <= 0 or line[0] in " \t":
                raise InvalidHandshake("malformed header line", 400)
            name = line[:colon].strip().lower()
            # Usually "name: value": slice past the space, so strip() has nothing to copy.
            value = line[colon + 2 if line[colon + 1 : colon + 2] == " " else colon + 1 :].strip()
            old = headers.get(name)
            headers[name] = value if old is None else old + ", " + value
        i = j + 2
    return start, headers


def _text(line):
    try:
        return line.decode()
    except UnicodeError:
        raise InvalidHandshake("head is not valid text", 400)


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
    """Parse a request head into a Request; InvalidHandshake(400/414/431) on abuse."""
    start, headers = parse_head(head)
    parts = start.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise InvalidHandshake("malformed request line", 400)
    if parts[2] != "HTTP/1.1":
        raise InvalidHandshake("HTTP/1.1 required", 400)
    return Request(parts[0], parts[1], headers)


def check_request(request, subprotocols=None, origins=None):
    """Validate a client upgrade; returns (accept value, chosen subprotocol or None)."""
    h = request.headers
    if request.method != "GET":
        raise InvalidHandshake("WebSocket upgrade needs GET", 405)
    if "websocket" not in header_tokens(h.get("upgrade")):
        raise InvalidHandshake("missing 'Upgrade: websocket'", 426)
    if "upgrade" not in header_tokens(h.get("connection")):
        raise InvalidHandshake("missing 'Connection: Upgrade'", 400)
    if "host" not in h:
        raise InvalidHandshake("missing Host", 400)
    if h.get("sec-websocket-version") != "13":
        raise InvalidHandshake("unsupported Sec-WebSocket-Version", 426)
    key = h.get("sec-websocket-key", "")
    try:
        raw = binascii.a2b_base64(key)
    except ValueError:
        raw = b""
    if len(raw) != 16 or "," in key:
        raise InvalidHandshake("invalid Sec-WebSocket-Key", 400)
    if origins is not None:
        origin = h.get("origin")
        if origin not in origins:
            raise InvalidHandshake("origin %r not allowed" % origin, 403)
    chosen = None
    if subprotocols:
        for p in header_tokens(h.get("sec-websocket-protocol")):
            for mine in subprotocols:
                if p == mine.lower():
                    chosen = mine
                    break
            if chosen:
                break
    return accept_key(key), chosen


def build_response(status, headers=None, body=None):
    """HTTP/1.1 response bytes (for 101 and for errors/plain pages)."""
    lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Error" if status >= 400 else "OK"))]
    if headers:
        for name, value in headers.items() if hasattr(headers, "items") else headers:
            lines.append("%s: %s" % (name, value))
    if body is None:
        body = b""
    if status != 101:
        if isinstance(body, str):
            body = body.encode()
        lines.append("Content-Length: %d" % len(body))
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def accept_response(accept, subprotocol=None):
    """The 101 response bytes completing a server-side handshake."""
    # One format, not build_response's list of lines: fewer temporaries per connection.
    proto = "Sec-WebSocket-Protocol: %s\r\n" % subprotocol if subprotocol else ""
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: %s\r\n%s\r\n" % (accept, proto)
    ).encode()


def error_response(err):
    """Response bytes for a failed handshake (426 also names the version we speak)."""
    headers = [("Content-Type", "text/plain")]
    if err.status == 426:
        headers.append(("Sec-WebSocket-Version", "13"))
        headers.append(("Upgrade", "websocket"))
    return build_response(err.status, headers, str(err) + "\n")


_HANDSHAKE_ONLY = ("sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "upgrade", "connection")


def app_headers(headers):
    """What a connection keeps for ``ws.headers``: the parsed ``headers`` an application
    may want (not the handshake-only ones), as "name: value" lines, less heap than a dict."""
    return "\r\n".join(["%s: %s" % (k, v) for k, v in headers.items() if k not in _HANDSHAKE_ONLY]).encode()
