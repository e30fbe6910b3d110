"""The interop language (mp/scenarios.py) spoken by the ``websockets`` library (CPython).

``serve`` is the reference server for microws clients; ``client_session`` (the
shared session run through ``WebsocketsApi``) is the reference client for microws
servers and prints the same transcript.
"""

import sys

from peerproc import MP_DIR
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK

if str(MP_DIR) not in sys.path:
    sys.path.insert(0, str(MP_DIR))

import scenarios as sc  # noqa: E402  (lives beside the MicroPython peer scripts)


class WebsocketsApi:
    """``scenarios`` talking through websockets 17's asyncio API."""

    binary = bytes
    Closed = ConnectionClosed
    ClosedOK = ConnectionClosedOK
    ClosedError = ConnectionClosedError

    @staticmethod
    def connect(url, subprotocols=None, max_size=65536, ssl=None):
        return connect(url, subprotocols=subprotocols, max_size=max_size, ssl=ssl, ping_interval=None, compression=None)

    @staticmethod
    def path(ws):
        return ws.request.path

    @staticmethod
    def pong_done(pong):
        return pong.done()

    @staticmethod
    def received(exc):
        return exc.rcvd.code, exc.rcvd.reason

    @staticmethod
    def sent_code(exc):
        return exc.sent.code


def _select_subprotocol(connection, offered):
    for p in sc.SUBPROTOCOLS:
        if p in offered:
            return p
    return None  # websockets' default would reject a client offering none


async def serve(out, ssl=None):
    """A websockets server speaking the language on 127.0.0.1 (see ``port_of``)."""
    return await ws_serve(
        sc.make_handler(out, WebsocketsApi),
        "127.0.0.1",
        0,
        ssl=ssl,
        subprotocols=sc.SUBPROTOCOLS,
        select_subprotocol=_select_subprotocol,
        max_size=sc.MAX_SIZE,
        compression=None,
    )


def port_of(server):
    return server.sockets[0].getsockname()[1]


async def client_session(base_url, out, ssl=None):
    """Drive a server speaking the language with a websockets client; same transcript."""
    await sc.client_session(base_url, out, ssl=ssl, api=WebsocketsApi)


async def check_client_run(client, timeout=60):
    """Wait for a client peer process to finish; its output must be the transcript."""
    code = await client.finish(timeout)
    assert client.lines == sc.expected_client_transcript(), client.output()
    assert code == 0, client.output()


async def check_server_closes(server, n=4, want=None):
    """Wait for ``n`` CLOSE reports from a server peer process; they must be ``want``."""
    closes = await server.expect_count("CLOSE ", n)
    assert sc.normalize_closes(closes) == (want or sc.expected_server_closes()), server.output()
