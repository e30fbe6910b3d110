"""The exceptions of microws: one family, rooted at ``WebSocketError``.

``super(Class, self)``, not ``super()``: the zero-argument form makes each
``__init__`` a closure over a ``__class__`` cell (256 B more heap for these four
on the unix port).

The library raises its errors by number (``ProtocolError(_E_RSV)``): the texts live in
``texts`` and are read only when an error is made (``error_text``).
"""


def error_text(msg, arg=None):
    """``msg`` % ``arg`` (no formatting when ``arg`` is None); ``msg`` is a str, or the
    number of a text in ``texts.T``.

    That module is imported for this call and dropped again (from ``sys.modules``, and
    the package's ``texts`` is None again): its strings would hold ~2 KB of a board's
    heap for nothing while all goes well. MicroPython prints an exception's first argument, so the text is
    made here, when the error is, not when it is shown.
    """
    if type(msg) is int:
        try:
            from .texts import T  # (not `from . import texts`: the package's __getattr__)

            msg = T[msg]
        except Exception:  # a heap too full to load them, or a partial copy of the library
            msg, arg = "microws error %d (%r)", (msg, arg)
        finally:
            forget("texts")
    return msg if arg is None else msg % arg


def forget(name):
    """Drop the library's module ``name`` again, once used: from ``sys.modules``, and the
    package's name for it is None again (the package names it from the start, so that
    its dict does not grow)."""
    import sys

    package = __name__[: __name__.rfind(".")]
    sys.modules.pop(package + "." + name, None)
    setattr(sys.modules[package], name, None)


class WebSocketError(Exception):
    """Base class of every microws error."""


class InvalidHandshake(WebSocketError):
    """The opening handshake failed; ``status`` is the HTTP status that fits (or 0)."""

    def __init__(self, msg, status=400, arg=None):
        super(InvalidHandshake, self).__init__(error_text(msg, arg))
        self.status = status


class ProtocolError(WebSocketError):
    """The peer broke RFC 6455; ``code`` is the close code to fail the connection with."""

    def __init__(self, msg, code=1002, arg=None):
        super(ProtocolError, self).__init__(error_text(msg, arg))
        self.code = code


class PayloadTooBig(ProtocolError):
    """A message is larger than ``max_size`` (close code 1009)."""

    def __init__(self, msg, arg=None):
        super(PayloadTooBig, self).__init__(msg, 1009, arg)


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
