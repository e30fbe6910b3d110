"""``microws bridge``: run the telemetry bridge and the live dashboard."""

import asyncio
import errno
import logging
import os
import signal
import ssl
import sys

from microws_host.cli import UserError

from .config import BridgeConfig, load_tokens


def add_arguments(parser):
    """Flags of ``microws bridge``."""
    parser.description = (
        "Boards connect to /device (WebSocket) or over --serial; browsers open / for the live "
        "dashboard, or use /ws, /events (SSE), /api/poll, /api/devices, /metrics."
    )
    a = parser.add_argument
    a("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for the LAN)")
    a("--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)")
    a(
        "--tokens",
        metavar="FILE",
        help='device tokens: JSON {"TOKEN": "DEVICE_ID", ...}; without it any device may connect',
    )
    a("--browser-token", metavar="TOKEN", help="require this token from browsers (?token= or Authorization: Bearer)")
    a(
        "--origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also allow browsers from this Origin (repeatable; '*' for any); same-origin is always allowed",
    )
    a(
        "--redis",
        metavar="URL",
        help="share devices and browsers with other bridges through Redis (redis://host:6379/0)",
    )
    a("--serial", metavar="PORT[,PORT]", help="also read boards on these serial ports (JSON lines)")
    a("--baudrate", type=int, default=115200, help="serial baud rate (default 115200)")
    a("--tls-cert", metavar="PEM", help="certificate for https/wss")
    a("--tls-key", metavar="PEM", help="private key for https/wss")
    a(
        "--keepalive",
        type=float,
        default=30.0,
        metavar="S",
        help="ping a silent device after S seconds; no answer within S/2 marks it offline (default 30)",
    )
    a("--max-devices", type=int, default=1000, help="devices the registry holds (default 1000)")
    a("--max-browsers", type=int, default=500, help="browser connections at once (default 500)")
    a("--max-message", type=int, default=16384, metavar="BYTES", help="largest message accepted (default 16384)")
    a("--device-rate", type=float, default=50.0, metavar="MSG/S", help="messages per second per device (default 50)")
    a(
        "--browser-queue",
        type=int,
        default=1000,
        metavar="N",
        help="events queued per browser before the oldest are dropped (default 1000)",
    )
    a("--history", type=int, default=1000, metavar="N", help="readings kept per device and sensor (default 1000)")
    a("--device-interval", type=int, metavar="MS", help="push this sampling interval to every device (cfg)")
    a("-v", "--verbose", action="store_true", help="log connections and errors")


def config_from_args(args):
    """A BridgeConfig from parsed flags (UserError for bad values)."""
    for name in ("max_devices", "max_browsers", "max_message", "browser_queue", "history"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    if args.keepalive <= 0 or args.device_rate <= 0:
        raise UserError("--keepalive and --device-rate must be positive")
    return BridgeConfig(
        tokens=load_tokens(args.tokens) if args.tokens else None,
        origins=tuple(o.rstrip("/").lower() for o in args.origin),
        browser_token=args.browser_token,
        keepalive=args.keepalive,
        max_message_bytes=args.max_message,
        max_devices=args.max_devices,
        max_browsers=args.max_browsers,
        device_rate=args.device_rate,
        device_burst=max(10, int(args.device_rate * 2)),
        browser_queue=args.browser_queue,
        history=args.history,
        device_interval_ms=args.device_interval,
    )


def ssl_context_from_args(args):
    """An SSL context for https/wss, or None (UserError for unusable files)."""
    if not args.tls_cert and not args.tls_key:
        return None
    if not (args.tls_cert and args.tls_key):
        raise UserError("--tls-cert and --tls-key go together")
    for path in (args.tls_cert, args.tls_key):
        if not os.path.isfile(path):
            raise UserError(f"TLS file {path} does not exist")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
    except (ssl.SSLError, OSError) as e:
        raise UserError("cannot load TLS certificate/key: %s" % (getattr(e, "reason", None) or e)) from None
    return ctx


def run(args):
    """Run the bridge until Ctrl-C or SIGTERM."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    config = config_from_args(args)
    ssl_context = ssl_context_from_args(args)
    return asyncio.run(_serve(args, config, ssl_context))


async def _serve(args, config, ssl_context):
    from .app import start_server, stop_server
    from .core import Bridge
    from .hub import LocalHub

    if args.redis:
        from .redis_hub import RedisHub

        hub = RedisHub(args.redis)
    else:
        hub = LocalHub()
    bridge = Bridge(config, hub)
    if args.redis:
        hub.metrics = bridge.metrics
    serial_bridge = None
    if args.serial:
        from .serial_bridge import SerialBridge

        try:
            import serial  # noqa: F401
        except ImportError:
            raise UserError("--serial needs pyserial (pip install pyserial)") from None
        serial_bridge = SerialBridge(bridge, [p for p in args.serial.split(",") if p], args.baudrate)
        try:
            serial_bridge.check_ports()
        except OSError as e:
            raise UserError(str(e)) from None
    try:
        await bridge.start()
    except OSError as e:  # e.g. Redis unreachable
        raise UserError(str(e)) from None
    try:
        runner, port = await start_server(bridge, args.host, args.port, ssl_context)
    except OSError as e:
        await bridge.close()
        if e.errno == errno.EADDRINUSE:
            raise UserError(f"port {args.port} on {args.host} is already in use") from None
        raise UserError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    if serial_bridge:
        await serial_bridge.start()
        try:
            await serial_bridge.wait_open()
        except TimeoutError:
            await serial_bridge.close()
            await stop_server(bridge, runner)
            raise UserError(f"serial ports {args.serial} did not open within 5 s") from None
    scheme = "https" if ssl_context else "http"
    host = f"[{args.host}]" if ":" in args.host else args.host
    extras = "".join(
        [f", serial: {args.serial}" if args.serial else "", f", redis: {args.redis}" if args.redis else ""]
    )
    print(f"microws bridge: listening on {scheme}://{host}:{port}/ (devices: /device{extras})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        if serial_bridge:
            await serial_bridge.close()
        await stop_server(bridge, runner)
    print("microws bridge: stopped", file=sys.stderr, flush=True)
    return 0
