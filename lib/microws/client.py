"""``connect(url, ...)``: a WebSocket client over asyncio streams (ws:// and wss://).

``ws = await connect(url)`` opens one connection; ``async for ws in
connect(url, reconnect=True)`` reconnects forever with capped exponential backoff
and jitter, yielding each new connection.
"""

import asyncio
import os
import time

from .connection import DEFAULT_MAX_SIZE, MICROPYTHON, WebSocket, read_http_head, set_nodelay, settle_heap
from .errors import ConnectionClosed, InvalidHandshake, error_text
from .frames import const  # MicroPython's, or a stand-in on CPython
from .handshake import app_headers
from .handshake_client import build_request, check_response, make_key

# Error texts, by number into texts.T (see errors.error_text).
_E_URL_SCHEME = const(38)
_E_URL_USER = const(39)
_E_URL_IPV6 = const(40)
_E_URL_NO_HOST = const(41)
_E_NOT_RECONNECTING = const(42)
_E_URL_CHAR = const(46)


def parse_url(url):
    """(secure, host, port, resource) of a ws:// or wss:// URL."""
    scheme = url[:6].lower()  # schemes are case-insensitive (RFC 3986 3.1)
    if scheme.startswith("ws://"):
        secure, rest = False, url[5:]
    elif scheme == "wss://":
        secure, rest = True, url[6:]
    else:
        raise ValueError(error_text(_E_URL_SCHEME, url))
    for c in rest:
        if c <= " " or c == "#" or c == "\x7f":  # RFC 6455 3: no fragment; no blank in a request line
            raise ValueError(error_text(_E_URL_CHAR, url))
    cut = len(rest)
    for c in "/?":  # the host ends at the first of them
        i = rest.find(c)
        if 0 <= i < cut:
            cut = i
    if cut < len(rest):
        netloc, resource = rest[:cut], rest[cut:]
        if resource[0] == "?":
            resource = "/" + resource
    else:
        netloc, resource = rest, "/"
    if "@" in netloc:
        raise ValueError(error_text(_E_URL_USER))
    port = 443 if secure else 80
    if netloc.startswith("["):  # IPv6 literal
        end = netloc.find("]")
        if end < 0:
            raise ValueError(error_text(_E_URL_IPV6, url))
        host = netloc[1:end]
        if netloc[end + 1 : end + 2] == ":":
            port = int(netloc[end + 2 :])
    elif ":" in netloc:
        host, p = netloc.rsplit(":", 1)
        port = int(p)
    else:
        host = netloc
    if not host:
        raise ValueError(error_text(_E_URL_NO_HOST, url))
    return secure, host, port, resource


def _client_ssl_context(ssl_arg):
    if ssl_arg is not None and ssl_arg is not True:
        return ssl_arg
    import ssl

    if MICROPYTHON:
        # Boards carry no CA bundle: encrypt, but verify only when the caller
        # passes a context with load_verify_locations(cadata=...).
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context()  # pyright: ignore[reportAttributeAccessIssue] (CPython)


async def _open(url, subprotocols, headers, ssl, open_timeout, options):
    secure, host, port, resource = parse_url(url)
    ctx = _client_ssl_context(ssl) if secure else None
    if ctx is None or MICROPYTHON:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), open_timeout)
    else:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx, server_hostname=host, ssl_handshake_timeout=open_timeout),
            open_timeout,
        )
    raw = None
    if MICROPYTHON:
        raw = writer.s  # pyright: ignore[reportAttributeAccessIssue] (MicroPython Stream)
        set_nodelay(raw)
        if ctx is not None:
            # Wrapped here, not by open_connection, to keep the TCP socket: after a failed
            # TLS handshake, closing MicroPython's TLS socket leaves it open (a socket
            # leaked per attempt). The handshake itself runs on the first write.
            writer.s = ctx.wrap_socket(raw, server_hostname=host, do_handshake_on_connect=False)  # pyright: ignore
            writer.s.setblocking(False)  # pyright: ignore[reportAttributeAccessIssue]
    try:
        key = make_key()
        default_port = 443 if secure else 80
        hosthdr = host if ":" not in host else "[%s]" % host
        if port != default_port:
            hosthdr = "%s:%d" % (hosthdr, port)
        request = build_request(hosthdr, resource, key, subprotocols, headers)
        head, leftover = await asyncio.wait_for(_exchange(reader, writer, request), open_timeout)
        answer, proto = check_response(head, key, subprotocols)
    except BaseException:
        if MICROPYTHON:
            writer.s.close()  # pyright: ignore[reportAttributeAccessIssue]
            raw.close()  # pyright: ignore[reportOptionalMemberAccess]
        else:  # no TLS shutdown with a peer that failed us (CPython waits up to 30 s for it)
            writer.transport.abort()
        raise
    settle_heap()
    ws = WebSocket(
        reader,
        writer,
        True,
        path=resource,
        head=app_headers(answer),
        subprotocol=proto,
        leftover=leftover,
        **options,
    )
    if MICROPYTHON and ctx is not None:
        ws._tls = True
    return ws


async def _exchange(reader, writer, request):
    # The request out, the response head in (on MicroPython the TLS handshake too):
    # all within open_timeout.
    try:
        writer.write(request)
        await writer.drain()
        return await read_http_head(reader)
    except ValueError as e:  # MicroPython's TLS rejects a certificate so (CPython: an OSError)
        raise OSError(str(e))


class connect:
    """Open a client connection: ``ws = await connect(url, ...)``.

    Parameters: ``subprotocols`` (list offered), ``headers`` (dict or pairs of
    extra request headers, e.g. Authorization, Origin), ``ssl`` (an SSLContext
    for wss; default verifies on CPython, encrypts without verifying on boards),
    ``max_size`` (largest message accepted, else close 1009; None: no limit), ``max_queue``,
    ``ping_interval`` / ``ping_timeout`` (keepalive seconds; None disables),
    ``open_timeout``, ``close_timeout``. With ``reconnect=True`` use it as
    ``async for ws in connect(url, reconnect=True)``: on failure or close it
    waits ``backoff_min`` doubling up to ``backoff_max`` seconds (with jitter); a
    connection that ends within twice the wait before it counts as a failure.
    """

    def __init__(
        self,
        url,
        subprotocols=None,
        headers=None,
        ssl=None,
        max_size=DEFAULT_MAX_SIZE,
        max_queue=16,
        ping_interval=20,
        ping_timeout=20,
        open_timeout=10,
        close_timeout=10,
        reconnect=False,
        backoff_min=0.5,
        backoff_max=30,
    ):
        self.url = url
        self.subprotocols = subprotocols
        self.headers = headers
        self.ssl = ssl
        self.open_timeout = open_timeout
        self.options = {
            "max_size": max_size,
            "max_queue": max_queue,
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "close_timeout": close_timeout,
        }
        self.reconnect = reconnect
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self._delay = 0
        self._opened = 0
        self._ws = None
        self._coro = None
        self.attempts = 0  # failed attempts in a row (reconnecting mode)

    def _open(self):
        return _open(self.url, self.subprotocols, self.headers, self.ssl, self.open_timeout, self.options)

    def __await__(self):
        return self._open().__await__()

    __iter__ = _open  # MicroPython awaits through __iter__

    # wait_for() and create_task() take only a coroutine (MicroPython: an object with send
    # and throw; CPython's create_task: close too): connect(...) is one, opening on its
    # first step. (close() ends that coroutine, not a connection.)
    def send(self, value):
        return self._opening().send(value)

    def throw(self, *exc):
        return self._opening().throw(*exc)

    def _opening(self):
        if self._coro is None:
            self._coro = self._open()
        return self._coro

    def close(self):
        if self._coro is not None:
            self._coro.close()

    async def __aenter__(self):
        self._ws = await self._open()
        return self._ws

    async def __aexit__(self, *exc):
        await self._ws.close()

    def __aiter__(self):
        if not self.reconnect:
            raise TypeError(error_text(_E_NOT_RECONNECTING))
        return self

    async def __anext__(self):
        ws = self._ws
        if ws is not None:  # the previous connection is over (or abandoned)
            self._ws = None
            await ws.close()
            # One that lasted twice the wait it came after starts the waits again from
            # backoff_min; one that ended sooner (a server that accepts, then drops or
            # closes at once) counts as a failure: reconnecting at once each time made
            # thousands of connections a second against such a server.
            if MICROPYTHON:  # ticks wrap around: only ticks_diff compares them
                lived = time.ticks_diff(time.ticks_ms(), self._opened) / 1000  # pyright: ignore[reportAttributeAccessIssue]
            else:
                lived = time.monotonic() - self._opened  # pyright: ignore[reportAttributeAccessIssue]
            wait = max(self._delay, self.backoff_min)
            self._delay = self.backoff_min if lived >= 2 * wait else self._longer()
        while True:
            if self._delay:
                await asyncio.sleep(self._delay * (0.5 + _random()))
            try:
                self._ws = await self._open()
                self._opened = time.ticks_ms() if MICROPYTHON else time.monotonic()  # pyright: ignore[reportAttributeAccessIssue]
                self.attempts = 0
                return self._ws
            # MemoryError too: on a board a fragmented heap often has room again after
            # the wait (what was freed meanwhile is collected).
            except (OSError, InvalidHandshake, ConnectionClosed, asyncio.TimeoutError, EOFError, MemoryError):
                self.attempts += 1
                self._delay = self._longer()
        # not reached

    def _longer(self):
        return min(self.backoff_max, self._delay * 2 if self._delay else self.backoff_min)


def _random():
    """A float in [0, 1) from os.urandom (no `random` module needed on boards)."""
    b = os.urandom(2)
    return ((b[0] << 8) | b[1]) / 65536
