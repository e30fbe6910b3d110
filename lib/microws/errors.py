"""The exceptions of microws: one family, rooted at ``WebSocketError``.

``super(Class, self)``, not ``super()``: the zero-argument form makes each
``__init__`` a closure over a ``__class__`` cell (256 B more heap for these four
on the unix port).
"""


class WebSocketError(Exception):
    """Base class of every microws error."""


class InvalidHandshake(WebSocketError):
    """The opening handshake failed; ``status`` is the HTTP status that fits (or 0)."""

    def __init__(self, msg, status=400):
        super(InvalidHandshake, self).__init__(msg)
        self.status = status


class ProtocolError(WebSocketError):
    """The peer broke RFC 6455; ``code`` is the close code to fail the connection with."""

    def __init__(self, msg, code=1002):
        super(ProtocolError, self).__init__(msg)
        self.code = code


class PayloadTooBig(ProtocolError):
    """A message is larger than ``max_size`` (close code 1009)."""

    def __init__(self, msg):
        super(PayloadTooBig, self).__init__(msg, 1009)


class ConnectionClosed(WebSocketError):
    """The connection is closed; ``code`` / ``reason`` are what the peer sent (or 1006)."""

    def __init__(self, code, reason=""):
        super(ConnectionClosed, self).__init__("connection closed: %d %s" % (code, reason))
        self.code = code
        self.reason = reason


class ConnectionClosedOK(ConnectionClosed):
    """Closed cleanly with 1000 (normal) or 1001 (going away)."""


class ConnectionClosedError(ConnectionClosed):
    """Closed with an error code, or without a close handshake (1006)."""


def closed_error(code, reason=""):
    """The right ConnectionClosed subclass for a close code."""
    if code == 1000 or code == 1001:
        return ConnectionClosedOK(code, reason)
    return ConnectionClosedError(code, reason)
