"""Who may connect: device tokens (401 before the upgrade), browser Origin (403) and
token, TLS; and the `microws bridge` command line (one-line errors, no tracebacks)."""

import json
import socket
import ssl
import subprocess

import pytest
from bridge_support import (
    VENV_BIN,
    BridgeProcess,
    browser,
    dev_event,
    device,
    free_port,
    hello,
    http_get,
    http_json,
    is_type,
    metric,
    run,
    running_bridge,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus

from microws_host.bridge.config import BridgeConfig

TOKENS = {"tok-n1": "n1", "tok-n2": "n2"}


def test_device_token_checked_before_upgrade():
    async def body():
        async with running_bridge(BridgeConfig(tokens=TOKENS)) as srv:
            for token in (None, "wrong"):
                with pytest.raises(InvalidStatus) as e:
                    async with device(srv, token=token):
                        pass
                assert e.value.response.status_code == 401
            async with device(srv, token="tok-n1") as d:  # Authorization: Bearer
                await d.send(hello("n1"))
                await d.send({"t": "tm", "boot": "boot-1", "seq": 1, "ts": 1, "d": {"temp": 1}})
                await d.expect(is_type("ack"))
            async with device(srv, token="tok-n2", query_token=True) as d:  # ?token=
                await d.send(hello("n2"))
                await d.send({"t": "tm", "boot": "boot-1", "seq": 1, "ts": 1, "d": {"temp": 1}})
                await d.expect(is_type("ack"))
            async with device(srv, token="tok-n1") as d:  # a token names one device only
                await d.send(hello("n2"))
                with pytest.raises(ConnectionClosed) as e:
                    await d.expect(lambda m: False)
                assert e.value.rcvd.code == 1008
            _, text = await http_get(srv.url("/metrics"))
            assert metric(text, "microws_rejected_total", reason="token") == 2
            assert metric(text, "microws_rejected_total", reason="id") == 1

    run(body())


def test_browser_origin_checked_same_origin_and_allow_list_pass():
    async def body():
        cfg = BridgeConfig(origins=("https://ops.example.com",))
        async with running_bridge(cfg) as srv:
            with pytest.raises(InvalidStatus) as e:
                async with browser(srv, origin="http://evil.example"):
                    pass
            assert e.value.response.status_code == 403
            status, _ = await http_get(srv.url("/events"), headers={"Origin": "http://evil.example"})
            assert status == 403
            status, _ = await http_get(srv.url("/api/devices"), headers={"Origin": "http://evil.example"})
            assert status == 403
            for origin in (f"http://127.0.0.1:{srv.port}", "https://ops.example.com", None):
                async with browser(srv, origin=origin) as b, device(srv) as d:
                    await d.send(hello("n1"))
                    await b.expect(dev_event("n1", True))

    run(body())


def test_browser_token_required_when_configured():
    async def body():
        async with running_bridge(BridgeConfig(browser_token="s3cret")) as srv:
            with pytest.raises(InvalidStatus) as e:
                async with browser(srv):
                    pass
            assert e.value.response.status_code == 401
            status, _ = await http_get(srv.url("/api/devices"))
            assert status == 401
            status, _ = await http_get(srv.url("/api/devices?token=nope"))
            assert status == 401
            status, body = await http_json(srv.url("/api/devices?token=s3cret"))
            assert status == 200 and body == []
            status, _ = await http_get(srv.url("/api/devices"), headers={"Authorization": "Bearer s3cret"})
            assert status == 200
            async with browser(srv.url("/ws?token=s3cret", ws=True)) as b, device(srv) as d:
                await d.send(hello("n1"))
                await b.expect(dev_event("n1", True))
            status, page = await http_get(srv.url("/"))  # the page itself holds no data
            assert status == 200 and "microws" in page

    run(body())


def test_tls_serves_wss_devices_and_https_api(device_test_certs):
    certs = device_test_certs

    async def body():
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(certs / "cert.pem", certs / "key.pem")
        client_ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        async with running_bridge(ssl_context=server_ctx) as srv:
            assert srv.url("/device", ws=True).startswith("wss://")
            async with device(srv, ssl=client_ctx) as d:
                await d.send(hello("secure"))
                await d.send({"t": "tm", "boot": "boot-1", "seq": 1, "ts": 1, "d": {"temp": 1}})
                await d.expect(is_type("ack"))
            status, devices = await http_json(srv.url("/api/devices"), ssl=client_ctx)
            assert status == 200 and devices[0]["id"] == "secure"

    run(body())


def test_cli_bridge_subprocess_serves_and_stops_cleanly(tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps(TOKENS))

    async def body(port):
        url = f"ws://127.0.0.1:{port}/device"
        with pytest.raises(InvalidStatus):
            async with device(url):
                pass
        async with device(url, token="tok-n1") as d:
            await d.send(hello("n1"))
            await d.send({"t": "tm", "boot": "boot-1", "seq": 1, "ts": 1, "d": {"temp": 1}})
            assert (await d.expect(is_type("ack")))["seq"] == 1
        status, text = await http_get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and metric(text, "microws_readings_total") == 1

    with BridgeProcess("--tokens", str(tokens), "--keepalive", "5") as bridge:
        run(body(bridge.port))
        bridge.stop()
        assert bridge.proc.returncode == 0


def _bridge_cli(*args):
    return subprocess.run([str(VENV_BIN / "microws"), "bridge", *args], capture_output=True, text=True, timeout=30)


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "tokens.json"
    bad.write_text("{not json")
    wrong_shape = tmp_path / "list.json"
    wrong_shape.write_text("[1, 2]")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cases = [
            (["--port", str(port)], "already in use"),
            (["--tokens", str(tmp_path / "missing.json")], "does not exist"),
            (["--tokens", str(bad)], "not valid JSON"),
            (["--tokens", str(wrong_shape)], "must be a JSON object"),
            (["--tls-cert", str(bad)], "go together"),
            (["--tls-cert", str(bad), "--tls-key", str(bad)], "cannot load TLS"),
            (["--serial", "/dev/does-not-exist"], "cannot open serial port /dev/does-not-exist"),
            (["--port", "0", "--redis", f"redis://127.0.0.1:{free_port()}/0"], "cannot reach Redis"),
        ]
        for args, expected in cases:
            proc = _bridge_cli(*args)
            lines = proc.stderr.strip().splitlines()
            assert proc.returncode == 1, (args, proc.stderr)
            assert len(lines) == 1 and expected in lines[0] and "Traceback" not in proc.stderr, (args, proc.stderr)
