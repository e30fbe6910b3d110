"""``serve(handler, host, port, ...)``: a WebSocket server over asyncio streams.

Also answers plain HTTP (``http_handler``) so a board can serve its page beside
its WebSocket route. A failing handler closes only its own connection (1011).
"""

import asyncio
import sys

from .connection import (
    _QUIET,
    DEFAULT_MAX_SIZE,
    MICROPYTHON,
    WebSocket,
    read_http_head,
    read_to_drop,
    set_nodelay,
    settle_heap,
)
from .errors import ConnectionClosed, InvalidHandshake, forget
from .frames import const  # MicroPython's, or a stand-in on CPython
from .handshake import app_headers
from .handshake_server import accept_response, check_request, parse_request

# Error texts, by number into texts.T (see errors.error_text).
_E_NO_ROUTE = const(29)
_E_NO_ROOM = const(48)

_LINGER_READS = const(64)  # at most this many reads after an answer (see _respond)
# The answer when the heap cannot hold one more connection: a constant, so sending it
# allocates nothing.
_NO_MEMORY = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _print_exc(e):
    try:
        if MICROPYTHON:
            sys.print_exception(e)
        else:
            import traceback

            traceback.print_exception(type(e), e, e.__traceback__)
    except MemoryError:
        pass  # a full heap may not even hold the traceback: the server goes on


class Server:
    """A running server: ``port``, ``connections``; ``close()`` then ``await wait_closed()``."""

    def __init__(self, handler, options):
        self._handler = handler
        self._opt = options
        self.connections = set()
        self._tasks = set()
        self.port = options["port"]
        self._listener = None
        self._sock = None
        self._accept_task = None
        self._closing = False
        self._drained = None  # Event for wait_closed(), made when it is first needed
        self._keepalive = None

    async def _start(self, host, port, backlog):
        opt = self._opt
        ssl = opt["ssl"]
        if not MICROPYTHON:
            tls = {"ssl": ssl, "ssl_handshake_timeout": opt["handshake_timeout"]} if ssl else {}
            self._listener = await asyncio.start_server(self._client, host, port, backlog=backlog, **tls)
            self.port = self._listener.sockets[0].getsockname()[1]  # pyright: ignore (CPython)
        else:
            import socket

            ai = socket.getaddrinfo(host, port)[0]
            s = socket.socket(ai[0], socket.SOCK_STREAM)
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(ai[-1])  # a port in use raises here: the socket must not leak
                s.listen(backlog)
                s.setblocking(False)
                if port == 0:
                    from .boundport import bound_port

                    self.port = bound_port(s)
                    forget("boundport")
            except BaseException:
                s.close()
                raise
            self._sock = s
            self._accept_task = asyncio.create_task(self._accept_loop(s, ssl))  # pyright: ignore[reportArgumentType]
        if opt["ping_interval"]:  # one keepalive task for all connections, once listening
            from .keepalive import keepalive_sweep

            sweep = keepalive_sweep(self.connections, opt["ping_interval"], opt["ping_timeout"])
            self._keepalive = asyncio.create_task(sweep)

    async def _accept_loop(self, s, ssl):
        # MicroPython's own accept loop does the same; start_server cannot report port 0's port.
        from asyncio import core  # pyright: ignore[reportAttributeAccessIssue]

        while True:
            yield core._io_queue.queue_read(s)
            raw = s2 = None
            try:
                raw, addr = s.accept()
                set_nodelay(raw)
                s2 = raw
                if ssl is not None:
                    s2 = ssl.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
                s2.setblocking(False)
                # No peername dict: it would cost ~150 B of heap per connection on a board.
                stream = asyncio.StreamReader(s2)
                if ssl is not None:
                    # The TCP socket too, for _client to close: closing the TLS one after
                    # a failed handshake leaves it open (one leaked per browser refusing
                    # our cert). On the stream, not in _client's frame: no heap for plain
                    # connections.
                    stream.raw = raw  # pyright: ignore[reportAttributeAccessIssue]
                asyncio.create_task(self._client(stream, stream))
            except OSError:  # this client is dropped, never the server
                _drop(s2)
                _drop(raw)
            except MemoryError as e:
                # Out of heap: say so (503), then wait a little for connections to end
                # rather than spin on the clients still waiting.
                _print_exc(e)
                _drop(s2, b"" if ssl else _NO_MEMORY)
                _drop(raw)
                await asyncio.sleep_ms(50)  # pyright: ignore[reportAttributeAccessIssue]

    async def _client(self, reader, writer):
        task = asyncio.current_task()
        self._tasks.add(task)
        ws = None
        answer = b""  # for a client dropped before the upgrade
        try:
            # The handshake runs in its own coroutine so its locals are freed
            # before the (long-lived) handler runs: heap per open connection.
            ws, handler = await self._handshake(reader, writer)
            if ws is None:
                return
            await writer.drain()  # the 101, written by _handshake
            if self._closing:  # close() came during the handshake: it did not see this one
                await ws.close(1001, "server shutting down")
                return
            settle_heap(False)  # the handshake's locals are garbage now; the handler's frames go low
            try:
                await handler(ws)
            except ConnectionClosed:
                pass
            except asyncio.CancelledError:
                await ws.close(1001, "server shutting down")
                return
            except Exception as e:
                _print_exc(e)
                await ws.close(1011, "internal error")
                return
            await ws.close(1000)
        except Exception as e:  # never let one connection stop the server (MemoryError too)
            if ws is None and isinstance(e, MemoryError):
                answer = _NO_MEMORY  # nothing was sent yet: say why, not just hang up
            _print_exc(e)
        finally:
            if ws is not None:
                self.connections.discard(ws)
            await _close_socket(ws, writer, answer)
            self._tasks.discard(task)
            if not self._tasks and self._drained is not None:
                self._drained.set()  # wait_closed() is waiting for the last one

    async def _handshake(self, reader, writer):
        """Read and answer the upgrade; returns (WebSocket, handler) or (None, None) when answered otherwise."""
        opt = self._opt
        most = opt["max_connections"]
        try:
            if self._closing or most and len(self.connections) >= most:  # before its request costs heap
                raise InvalidHandshake(_E_NO_ROOM, 503)
            head, leftover = await asyncio.wait_for(read_http_head(reader), opt["handshake_timeout"])
            request = parse_request(head)
            if not request.is_upgrade() and opt["http_handler"] is not None:
                from .responses import http_response

                await _respond(reader, writer, await http_response(opt["http_handler"], request))
                return None, None
            handler = self._handler
            if isinstance(handler, dict):
                handler = handler.get(request.path.split("?", 1)[0])
                if handler is None:
                    raise InvalidHandshake(_E_NO_ROUTE, 404)
            accept, subprotocol = check_request(request, opt["subprotocols"], opt["origins"])
            if most and len(self.connections) >= most:  # places taken while its request came
                raise InvalidHandshake(_E_NO_ROOM, 503)
            # Everything the connection needs is made before the 101 goes out: if the
            # heap runs short, _client still answers a plain 503, not a WebSocket that
            # closes before it was set up.
            response = accept_response(accept, subprotocol)
            settle_heap()
            ws = WebSocket(
                reader,
                writer,
                False,
                path=request.path,
                head=app_headers(request.headers),
                subprotocol=subprotocol,
                max_size=opt["max_size"],
                max_queue=opt["max_queue"],
                close_timeout=opt["close_timeout"],
                leftover=leftover,
            )
        except InvalidHandshake as e:
            if e.status:  # (0: the client hung up before its request ended)
                from .responses import error_response

                await _respond(reader, writer, error_response(e))
            return None, None
        except (asyncio.TimeoutError, OSError, EOFError):
            return None, None  # _client closes the socket
        # Counted from here, with no await since the check above: max_connections holds
        # for clients that arrive together too.
        self.connections.add(ws)
        writer.write(response)  # drained by _client once ws is its own
        return ws, handler

    def close(self):
        """Stop accepting and close every connection with 1001 (going away)."""
        self._closing = True
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        if self._listener is not None:
            self._listener.close()
        if self._accept_task is not None:
            self._accept_task.cancel()
            self._accept_task = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for ws in list(self.connections):
            asyncio.create_task(ws.close(1001, "server shutting down"))
        if self._drained is not None:
            self._drained.set()  # wait_closed() waits for close() first

    async def wait_closed(self):
        """Wait until the listener and every connection are closed.

        Handlers still running ``close_timeout`` after ``close()`` (stuck on
        something other than their socket) are cancelled.
        """
        if self._drained is None:
            self._drained = asyncio.Event()
        while not self._closing:  # close() sets the event (so does every last connection)
            self._drained.clear()
            await self._drained.wait()
        if self._listener is not None:
            await self._listener.wait_closed()
        timeout = self._opt.get("close_timeout", 10)
        if timeout is not None:
            timeout += 1
        while self._tasks:
            self._drained.clear()
            try:
                await asyncio.wait_for(self._drained.wait(), timeout)
            except asyncio.TimeoutError:
                for task in list(self._tasks):
                    task.cancel()
                timeout = 1  # let cancelled handlers run their cleanup

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()
        await self.wait_closed()


async def _close_socket(ws, writer, answer):
    # A connection's last step: never raises, not even when wait_closed() cancels the
    # task meanwhile, so that the task always leaves the server's books. (A function of
    # its own: a try block more in _client cost 32 B of heap per open connection.)
    try:
        if ws is None:  # not upgraded (answered, refused or failed)
            _drop(writer, answer)
        else:
            await ws._close_tcp()
    except BaseException:  # MemoryError, or cancelled while closing
        _drop(writer)
    _drop(getattr(writer, "raw", None))


async def _respond(reader, writer, data):
    # Answer a request that is not upgraded; _client closes the socket after it. First
    # read what the peer still sends (a refused request's rest, or all of it for a 503
    # sent before reading) until it hangs up or goes quiet: closing with unread bytes
    # makes TCP send a reset, which can destroy the answer before the peer reads it.
    try:
        writer.write(data)
        await writer.drain()
        for _ in range(_LINGER_READS):
            if not await asyncio.wait_for(read_to_drop(reader), _QUIET):
                return
    except (OSError, EOFError, asyncio.TimeoutError):
        pass


def _drop(conn, data=b""):
    # Close without a coroutine (none may fit in a full heap): ``conn`` is a socket or
    # a stream (MicroPython's Stream only closes in its coroutine wait_closed(), so its
    # socket is closed directly); ``data`` goes out if the socket takes it at once.
    if conn is None:
        return
    conn = getattr(conn, "s", conn)
    try:
        if data:
            conn.write(data)
    except Exception:
        pass
    try:
        conn.close()
    except Exception:
        pass


async def serve(
    handler,
    host="0.0.0.0",
    port=80,
    ssl=None,
    subprotocols=None,
    origins=None,
    max_size=DEFAULT_MAX_SIZE,
    max_queue=16,
    max_connections=None,
    http_handler=None,
    ping_interval=None,
    ping_timeout=20,
    handshake_timeout=10,
    close_timeout=10,
    backlog=64,
):
    """Start a server; returns a Server (``.port`` is the bound port, also for port 0).

    ``handler(ws)`` is a coroutine run per connection (or a dict {path: handler};
    other paths get 404). ``origins``: allowed Origin values (others get 403;
    include None to allow clients that send no Origin). ``http_handler(request)``
    (sync or async) answers plain HTTP requests with ``(status, headers, body)``
    or None for 404. ``max_connections``: beyond it new clients get 503.
    ``max_size``: largest message accepted, else close 1009 (None: no limit).
    ``ping_interval``: every so many seconds each connection is pinged (one task for
    the server); no pong within ``ping_timeout`` -> dropped with 1011, so a peer that
    vanished without closing does not hold its connection for ever. Off (None) by
    default: a peer that never expects a ping (a hand-rolled benchmark or test client)
    would take it for data; set it on a board that serves browsers.
    """
    options = {
        "ssl": ssl,
        "port": port,
        "subprotocols": subprotocols,
        "origins": origins,
        "max_size": max_size,
        "max_queue": max_queue,
        "max_connections": max_connections,
        "http_handler": http_handler,
        "ping_interval": ping_interval,
        "ping_timeout": ping_timeout,
        "handshake_timeout": handshake_timeout,
        "close_timeout": close_timeout,
    }
    server = Server(handler, options)
    await server._start(host, port, backlog)
    return server
