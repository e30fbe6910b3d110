"""microws: a small, fast RFC 6455 WebSocket client and server for MicroPython and CPython.

``connect`` and ``serve`` are imported on first use, so a board that only runs a
client never loads the server code (and the other way round): heap is tight.
"""

from .errors import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    PayloadTooBig,
    ProtocolError,
    WebSocketError,
)

TYPE_CHECKING = False  # type checkers treat this name as True (no `typing` import on a board)
if TYPE_CHECKING:  # what __getattr__ below returns, for type checkers
    from .client import connect
    from .server import serve

# The error texts' module while an error is made, else None (errors.error_text): named
# here from the start, so that loading it mid-run does not grow this module's dict. A
# dict that grows gets a new table, and one made while the heap is full of garbage
# lands high: a block for good in the middle of the free run a big message needs.
texts = None
boundport = None  # the same, for the server's port-0 lookup on the unix port

__version__ = "0.1.0"
__all__ = [
    "connect",
    "serve",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
    "InvalidHandshake",
    "PayloadTooBig",
    "ProtocolError",
    "WebSocketError",
]


def __getattr__(name):
    if name == "connect":
        from .client import connect

        return connect
    if name == "serve":
        from .server import serve

        return serve
    raise AttributeError(name)
