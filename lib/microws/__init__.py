"""microws: a small, fast RFC 6455 WebSocket client and server for MicroPython and CPython."""

from .client import connect
from .errors import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    PayloadTooBig,
    ProtocolError,
    WebSocketError,
)
from .server import serve

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
