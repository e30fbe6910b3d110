"""aiohttp routes of the bridge: devices, browsers, REST, metrics, the dashboard."""

import asyncio
import hmac
import json
import logging
import weakref
from pathlib import Path

import aiohttp
from aiohttp import web

from .core import DeviceSession, Subscriber, dumps

log = logging.getLogger("microws.bridge")

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SUBPROTOCOL = "microws.v1"
BRIDGE_KEY = web.AppKey("bridge", object)
SOCKETS_KEY = web.AppKey("sockets", weakref.WeakSet)
MAX_POLL_WAIT = 60.0


def create_app(bridge):
    """The aiohttp application serving one ``Bridge``."""
    app = web.Application(client_max_size=64 * 1024)
    app[BRIDGE_KEY] = bridge
    app[SOCKETS_KEY] = weakref.WeakSet()
    app.on_shutdown.append(_close_connections)
    app.router.add_get("/device", device_ws)
    app.router.add_get("/ws", browser_ws)
    app.router.add_get("/events", browser_sse)
    app.router.add_get("/api/poll", browser_poll)
    app.router.add_get("/api/devices", api_devices)
    app.router.add_get("/api/devices/{id}", api_device)
    app.router.add_get("/api/devices/{id}/history", api_history)
    app.router.add_post("/api/devices/{id}/cmd", api_command)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR)
    return app


async def start_server(bridge, host="127.0.0.1", port=8765, ssl_context=None):
    """Start the HTTP server of a started ``Bridge``; returns (runner, bound port).

    Raises OSError when the address cannot be bound (e.g. the port is in use).
    """
    app = create_app(bridge)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, backlog=1024)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = site._server.sockets[0].getsockname()[1]
    return runner, bound


async def _close_connections(app):
    # Say goodbye (1001 going away) instead of letting the shutdown timeout cut peers off.
    for sub in list(app[BRIDGE_KEY].subscribers):
        sub.stop()
    sockets = list(app[SOCKETS_KEY])
    await asyncio.gather(
        *(ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"bridge shutting down") for ws in sockets),
        return_exceptions=True,
    )


async def stop_server(bridge, runner):
    """Close browsers and devices, then the server and the hub."""
    await runner.cleanup()
    await bridge.close()


# -- access checks -------------------------------------------------------------


def _bearer(request):
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.query.get("token")


def _origin_allowed(request, allowed):
    origin = request.headers.get("Origin")
    if origin is None:  # not a browser (or a same-origin GET): Origin is a browser guard
        return True
    origin = origin.rstrip("/").lower()
    if "*" in allowed or origin in allowed:
        return True
    return origin == (f"{request.scheme}://{request.host}").lower()


def _browser_refusal(request, bridge, streaming=False):
    """None when a browser request may proceed, else the HTTP error to answer.

    ``streaming`` requests (WebSocket, SSE) also count against the browser limit.
    """
    cfg = bridge.config
    if not _origin_allowed(request, cfg.origins):
        bridge.metrics.inc("microws_rejected_total", reason="origin")
        return web.Response(status=403, text="origin not allowed\n")
    if cfg.browser_token is not None:
        token = _bearer(request) or ""
        if not hmac.compare_digest(token.encode(), cfg.browser_token.encode()):
            bridge.metrics.inc("microws_rejected_total", reason="browser_token")
            return web.Response(status=401, text="browser token required\n", headers={"WWW-Authenticate": "Bearer"})
    if streaming and bridge.browsers_full():
        bridge.metrics.inc("microws_rejected_total", reason="browsers")
        return web.Response(status=503, text="too many browsers\n")
    return None


def _device_filter(value):
    if value is None or value in ("", "*"):
        return None
    if isinstance(value, str):
        return set(filter(None, value.split(",")))
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return set(value)
    raise ValueError('devices must be a list of ids or "*"')


# -- devices -------------------------------------------------------------------


class _WebSocketLink:
    def __init__(self, ws):
        self.ws = ws

    async def send_text(self, text):
        if not self.ws.closed:
            await self.ws.send_str(text)

    async def close(self, code, reason):
        await self.ws.close(code=code, message=reason.encode())


async def device_ws(request):
    """``/device``: a board's WebSocket (token checked before the upgrade)."""
    bridge = request.app[BRIDGE_KEY]
    cfg = bridge.config
    if not _origin_allowed(request, cfg.origins):
        bridge.metrics.inc("microws_rejected_total", reason="origin")
        return web.Response(status=403, text="origin not allowed\n")
    token_device = None
    if cfg.tokens is not None:
        token_device = cfg.tokens.get(_bearer(request) or "")
        if token_device is None:
            bridge.metrics.inc("microws_rejected_total", reason="token")
            return web.Response(
                status=401, text="device token missing or wrong\n", headers={"WWW-Authenticate": "Bearer"}
            )
    ws = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,), heartbeat=cfg.keepalive, max_msg_size=cfg.max_message_bytes, compress=False
    )
    if not ws.can_prepare(request).ok:
        return web.Response(status=426, text="WebSocket upgrade required\n")
    await ws.prepare(request)
    request.app[SOCKETS_KEY].add(ws)
    session = DeviceSession(bridge, _WebSocketLink(ws), "ws", token_device)
    try:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await session.handle_text(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await session.reject("binary messages are not part of microws.v1", "binary")
            elif msg.type == aiohttp.WSMsgType.ERROR:
                if getattr(ws.exception(), "code", None) == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
                    bridge.metrics.inc("microws_bad_messages_total", peer="device", reason="size")
                break
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        session.closed()
    return ws


# -- browsers ------------------------------------------------------------------


async def browser_ws(request):
    """``/ws``: a browser's WebSocket: `sub` and `cmd` in, events and results out."""
    bridge = request.app[BRIDGE_KEY]
    refusal = _browser_refusal(request, bridge, streaming=True)
    if refusal is not None:
        return refusal
    ws = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,), heartbeat=30.0, max_msg_size=bridge.config.max_message_bytes, compress=False
    )
    if not ws.can_prepare(request).ok:
        return web.Response(status=426, text="WebSocket upgrade required\n")
    await ws.prepare(request)
    request.app[SOCKETS_KEY].add(ws)
    try:
        devices = _device_filter(request.query.get("devices"))
    except ValueError:
        devices = None
    sub = Subscriber("ws", _frame_writer(request, ws), bridge.config.browser_queue, devices)
    bridge.add_subscriber(sub)
    writer = asyncio.ensure_future(sub.run())
    try:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                if msg.type == aiohttp.WSMsgType.ERROR:
                    break
                continue
            bridge.counts["browser_in"] += 1
            _browser_message(bridge, sub, msg.data)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        bridge.remove_subscriber(sub)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    return ws


def _frame_writer(request, ws):
    """An async ``send_batch(items)`` writing many WebSocket text frames at once.

    aiohttp's ``send_str`` costs one socket write per message; a browser gets up to
    thousands a second, so frames are built here (server frames are unmasked, and
    compression is off) and written together. The frames are whole, so they interleave
    safely with aiohttp's own pings and close frame.
    """
    transport, protocol = request.transport, request.protocol

    async def send_batch(items):
        if transport is None or transport.is_closing() or ws.closed:
            raise ConnectionResetError("browser connection closed")
        transport.write(b"".join([item.ws_frame() for item in items]))
        if protocol.writing_paused:
            # The transport's buffer is above its high-water mark: wait until it drains
            # (aiohttp's own writer waits on the same helper).
            await protocol._drain_helper()

    return send_batch


def _browser_message(bridge, sub, text):
    def refuse(msg, reason):
        bridge.metrics.inc("microws_bad_messages_total", peer="browser", reason=reason)
        sub.push(dumps({"t": "err", "msg": msg}))

    try:
        msg = json.loads(text)
    except ValueError:
        return refuse("malformed JSON", "json")
    if not isinstance(msg, dict):
        return refuse("a message must be a JSON object", "json")
    kind = msg.get("t")
    if kind == "sub":
        try:
            sub.devices = _device_filter(msg.get("devices"))
        except ValueError as e:
            return refuse(str(e), "field")
        for snapshot in bridge.snapshot_texts(sub.devices):
            sub.push(snapshot)
    elif kind == "cmd":
        device_id, name, args, request_id = msg.get("dev"), msg.get("name"), msg.get("args", {}), msg.get("id")
        if not isinstance(device_id, str) or not isinstance(name, str) or not isinstance(args, dict):
            return refuse("cmd needs dev (text), name (text) and args (object)", "field")

        def reply(result):
            sub.push(dumps({"t": "res", "dev": device_id, "id": request_id, **result}))

        bridge.request_command(device_id, name, args, reply)
    else:
        refuse(f"unknown message type {kind!r}", "type")


async def browser_sse(request):
    """``/events``: the same events as Server-Sent Events (``?devices=a,b``)."""
    bridge = request.app[BRIDGE_KEY]
    refusal = _browser_refusal(request, bridge, streaming=True)
    if refusal is not None:
        return refusal
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await resp.prepare(request)
    await resp.write(b"retry: 2000\n\n")

    async def send(items):
        await resp.write(b"".join([item.sse_bytes() for item in items]))

    sub = Subscriber("sse", send, bridge.config.browser_queue, _device_filter(request.query.get("devices")))
    bridge.add_subscriber(sub)
    try:
        # A comment line every 15 s keeps proxies from closing an idle stream and
        # notices a browser that went away.
        await sub.run(idle_text=": keepalive", idle_seconds=15.0)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        bridge.remove_subscriber(sub)
    return resp


async def browser_poll(request):
    """``/api/poll?since=CURSOR&wait=25``: events after a cursor, waiting for some."""
    bridge = request.app[BRIDGE_KEY]
    refusal = _browser_refusal(request, bridge)
    if refusal is not None:
        return refusal
    try:
        since = int(request.query["since"]) if request.query.get("since") else None
        wait = min(MAX_POLL_WAIT, max(0.0, float(request.query.get("wait", 25))))
        devices = _device_filter(request.query.get("devices"))
    except ValueError:
        return web.json_response({"t": "err", "msg": "since must be an integer, wait a number"}, status=400)
    if bridge.browsers_full():
        wait = 0.0  # answer at once rather than hold one more connection open
    cursor, texts, missed = await bridge.poll(since, wait, devices)
    # The events are already JSON text: joined, not parsed and dumped again.
    body = f'{{"cursor":{cursor},"missed":{missed},"events":[{",".join(texts)}]}}'
    return web.Response(text=body, content_type="application/json")


# -- REST ----------------------------------------------------------------------


async def api_devices(request):
    """``/api/devices``: every known device with its latest values."""
    bridge = request.app[BRIDGE_KEY]
    refusal = _browser_refusal(request, bridge)
    if refusal is not None:
        return refusal
    return web.json_response([rec.summary() for rec in bridge.registry], dumps=dumps)


def _record(request):
    bridge = request.app[BRIDGE_KEY]
    rec = bridge.registry.get(request.match_info["id"])
    if rec is None:
        raise web.HTTPNotFound(text='{"t":"err","msg":"unknown device"}', content_type="application/json")
    return rec


async def api_device(request):
    """``/api/devices/{id}``: one device with its latest values."""
    refusal = _browser_refusal(request, request.app[BRIDGE_KEY])
    return refusal or web.json_response(_record(request).summary(), dumps=dumps)


async def api_history(request):
    """``/api/devices/{id}/history?sensor=&since=``: recent readings from the ring."""
    refusal = _browser_refusal(request, request.app[BRIDGE_KEY])
    if refusal is not None:
        return refusal
    rec = _record(request)
    try:
        since = int(request.query["since"]) if request.query.get("since") else None
    except ValueError:
        return web.json_response({"t": "err", "msg": "since must be an integer (ms)"}, status=400)
    sensor = request.query.get("sensor") or None
    return web.json_response({"id": rec.id, "sensors": rec.readings(sensor, since)}, dumps=dumps)


async def api_command(request):
    """``POST /api/devices/{id}/cmd`` {name, args}: send a command, answer with its result.

    For clients on SSE or long-poll, which cannot send over their event stream.
    """
    bridge = request.app[BRIDGE_KEY]
    refusal = _browser_refusal(request, bridge)
    if refusal is not None:
        return refusal
    try:
        body = await request.json()
    except ValueError:
        body = None
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("name"), str)
        or not isinstance(body.get("args", {}), dict)
    ):
        bridge.metrics.inc("microws_bad_messages_total", peer="browser", reason="field")
        return web.json_response({"t": "err", "msg": 'body must be {"name": text, "args": {}}'}, status=400)
    done = asyncio.get_running_loop().create_future()
    device_id = request.match_info["id"]
    bridge.request_command(device_id, body["name"], body.get("args", {}), lambda r: done.done() or done.set_result(r))
    result = await done
    return web.json_response({"t": "res", "dev": device_id, "id": body.get("id"), **result}, dumps=dumps)


async def metrics(request):
    """``/metrics``: Prometheus text."""
    text = request.app[BRIDGE_KEY].render_metrics()
    return web.Response(body=text.encode(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def index(request):
    """``/``: the dashboard."""
    return web.FileResponse(STATIC_DIR / "index.html")
