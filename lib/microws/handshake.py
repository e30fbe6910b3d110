"""Sans-I/O opening handshake (RFC 6455 section 4): what client and server share.

Each side's own part is in ``handshake_server`` and ``handshake_client``, so a board
running only a server, or only a client, keeps only its half in RAM.

Parsing is bounded (request line, header bytes, header count) and every failure
raises ``InvalidHandshake`` carrying the HTTP status a server should answer with.
"""

import binascii
import hashlib

from .errors import InvalidHandshake
from .frames import const  # MicroPython's, or a stand-in on CPython

_MAX_LINE = const(4096)  # request line / status line
_MAX_HEADERS = const(64)
# Error texts, by number into texts.T (see errors.error_text).
_E_START_LINE_LONG = const(14)
_E_TOO_MANY_HEADERS = const(15)
_E_HEADER_LINE = const(16)
_E_HEAD_NOT_TEXT = const(17)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


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
        if i > _MAX_LINE:
            raise InvalidHandshake(_E_START_LINE_LONG, 414)
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
            if count > _MAX_HEADERS:
                raise InvalidHandshake(_E_TOO_MANY_HEADERS, 431)
            line = _text(head[i:j])
            colon = line.find(":")
            if colon <= 0 or line[0] in " \t":
                raise InvalidHandshake(_E_HEADER_LINE, 400)
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
        raise InvalidHandshake(_E_HEAD_NOT_TEXT, 400)


_HANDSHAKE_ONLY = ("sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "upgrade", "connection")


def app_headers(headers):
    """What a connection keeps for ``ws.headers``: the parsed ``headers`` an application
    may want (not the handshake-only ones), as "name: value" lines, less heap than a dict."""
    return "\r\n".join(["%s: %s" % (k, v) for k, v in headers.items() if k not in _HANDSHAKE_ONLY]).encode()
