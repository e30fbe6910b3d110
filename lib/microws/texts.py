"""Every error text microws raises, by number: ``T[n]`` for a module's ``_E_NAME = const(n)``.

Imported only while an error is being made (``errors.error_text``) and dropped again:
resident, these strings would take ~2 KB of a board's heap for nothing while all goes
well. A new text goes at the end with its tag; tests/device/test_frames.py checks that
each ``_E_NAME`` in the library is the index of the line tagged ``E_NAME`` here.
"""

T = (
    "invalid UTF-8 in text",  # E_UTF8
    "close frame with a 1-byte payload",  # E_CLOSE_ONE_BYTE
    "invalid close code %d",  # E_CLOSE_CODE
    "reserved bits set (no extension negotiated)",  # E_RSV
    "reserved control opcode %d",  # E_CONTROL_OPCODE
    "fragmented control frame",  # E_CONTROL_FRAGMENTED
    "control frame payload > 125 bytes",  # E_CONTROL_LONG
    "reserved data opcode %d",  # E_DATA_OPCODE
    "continuation frame without a message to continue",  # E_LONE_CONTINUATION
    "new data frame inside a fragmented message",  # E_DATA_IN_MESSAGE
    "masked frame from server",  # E_MASKED
    "unmasked frame from client",  # E_UNMASKED
    "64-bit length with the most significant bit set",  # E_LENGTH_MSB
    "message larger than max_size=%d",  # E_TOO_BIG
    "start line too long",  # E_START_LINE_LONG
    "too many headers",  # E_TOO_MANY_HEADERS
    "malformed header line",  # E_HEADER_LINE
    "head is not valid text",  # E_HEAD_NOT_TEXT
    "connection closed during the handshake",  # E_HEAD_CLOSED
    "HTTP head too large",  # E_HEAD_TOO_LARGE
    "malformed request line",  # E_REQUEST_LINE
    "HTTP/1.1 required",  # E_NOT_HTTP11
    "WebSocket upgrade needs GET",  # E_NOT_GET
    "missing 'Upgrade: websocket'",  # E_NO_UPGRADE
    "missing 'Connection: Upgrade'",  # E_NO_CONNECTION_UPGRADE
    "missing or repeated Host",  # E_NO_HOST
    "unsupported Sec-WebSocket-Version",  # E_VERSION
    "invalid Sec-WebSocket-Key",  # E_KEY
    "origin %r not allowed",  # E_ORIGIN
    "no WebSocket route for this path",  # E_NO_ROUTE
    "cannot find the bound port",  # E_NO_PORT
    "malformed status line",  # E_STATUS_LINE
    "server answered %d instead of 101",  # E_STATUS
    "response lacks 'Upgrade: websocket'",  # E_RESPONSE_UPGRADE
    "response lacks 'Connection: Upgrade'",  # E_RESPONSE_CONNECTION
    "wrong Sec-WebSocket-Accept",  # E_ACCEPT
    "server chose a subprotocol we did not offer: %s",  # E_SUBPROTOCOL
    "server chose an extension we did not offer",  # E_EXTENSION
    "URL must start with ws:// or wss://: %r",  # E_URL_SCHEME
    "user info in WebSocket URLs is not supported",  # E_URL_USER
    "bad IPv6 address in %r",  # E_URL_IPV6
    "no host in %r",  # E_URL_NO_HOST
    "use connect(url, reconnect=True) to iterate over connections",  # E_NOT_RECONNECTING
    "empty fragmented message",  # E_NO_FRAGMENTS
    "message parts must be str or bytes",  # E_PART_TYPE
    "a fragmented message mixes str and bytes",  # E_PARTS_MIXED
    "a blank, control character or '#' in %r",  # E_URL_CHAR
    "CR or LF in a header",  # E_HEADER_CRLF
    "too many connections, or shutting down",  # E_NO_ROOM
)
