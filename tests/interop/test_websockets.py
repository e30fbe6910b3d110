"""Interop with the ``websockets`` library (CPython, pinned) as server and as client.

microws runs under the unix-port MicroPython in a subprocess (the real target) and,
where it costs nothing, in this CPython process too. Both sides speak the command
language of mp/scenarios.py, so one transcript checks every size (0 .. 200000),
both message types, fragmentation both ways, pings both ways, close codes and
reasons both ways, subprotocol negotiation and the 1009 limit.
"""

import ssl

import pytest
import websockets_peer
from peerproc import LIB, MP_DIR, Peer, ca_der, client_ssl, mp_env, run, server_ssl
from websockets_peer import sc

TRANSCRIPT = sc.expected_client_transcript()


async def _mp_client_against_websockets(micropython, ssl=None, certdir=None):
    closes = []
    server = await websockets_peer.serve(closes.append, ssl=ssl)
    scheme = "wss" if ssl else "ws"
    argv = [micropython, MP_DIR / "ws_client.py", "%s://127.0.0.1:%d" % (scheme, websockets_peer.port_of(server))]
    if certdir:
        argv.append("ca=%s" % ca_der(certdir))
    try:
        async with await Peer.start(argv, env=mp_env(MP_DIR, LIB), cwd=MP_DIR, port_timeout=None) as client:
            await websockets_peer.check_client_run(client)
        server.close()
        await server.wait_closed()
        assert sc.normalize_closes(closes) == sc.expected_server_closes()
    finally:
        server.close()


async def _websockets_client_against_mp_server(micropython, ssl=None, certdir=None):
    argv = [micropython, MP_DIR / "ws_server.py"]
    if certdir:
        argv.append("certdir=%s" % certdir)
    async with await Peer.start(argv, env=mp_env(MP_DIR, LIB), cwd=MP_DIR) as server:
        transcript = []
        scheme = "wss" if ssl else "ws"
        await websockets_peer.client_session("%s://127.0.0.1:%d" % (scheme, server.port), transcript.append, ssl=ssl)
        assert transcript == TRANSCRIPT, server.output()
        await websockets_peer.check_server_closes(server)


def test_micropython_client_talks_to_websockets_server(micropython):
    run(_mp_client_against_websockets(micropython))


def test_micropython_client_talks_wss_to_websockets_server_and_verifies_its_cert(micropython, device_test_certs):
    run(_mp_client_against_websockets(micropython, server_ssl(device_test_certs), device_test_certs))


def test_websockets_client_talks_to_micropython_server(micropython):
    run(_websockets_client_against_mp_server(micropython))


def test_websockets_client_talks_wss_to_micropython_server(micropython, device_test_certs):
    run(_websockets_client_against_mp_server(micropython, client_ssl(device_test_certs), device_test_certs))


async def _in_process(start_server, port_of, session, certdir, secure):
    closes = []
    server = await start_server(closes.append, ssl=server_ssl(certdir) if secure else None)
    try:
        transcript = []
        url = "%s://127.0.0.1:%d" % ("wss" if secure else "ws", port_of(server))
        await session(url, transcript.append, ssl=client_ssl(certdir) if secure else None)
        assert transcript == TRANSCRIPT
    finally:
        server.close()
        await server.wait_closed()  # both libraries wait for their handlers here
    assert sc.normalize_closes(closes) == sc.expected_server_closes()


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_cpython_microws_client_talks_to_websockets_server(secure, device_test_certs):
    run(_in_process(websockets_peer.serve, websockets_peer.port_of, sc.client_session, device_test_certs, secure))


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_websockets_client_talks_to_cpython_microws_server(secure, device_test_certs):
    session = websockets_peer.client_session
    run(_in_process(sc.serve, lambda server: server.port, session, device_test_certs, secure))


@pytest.mark.parametrize("mismatch", ["other-ca", "other-host"])
def test_micropython_client_refuses_wss_server_it_cannot_verify(micropython, device_test_certs, tmp_path, mismatch):
    import trustme

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))  # what the client trusts
    if mismatch == "other-ca":  # the usual localhost/127.0.0.1 cert, from a CA the client does not trust
        ctx = server_ssl(device_test_certs)
    else:  # signed by the trusted CA, but for another host name
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("example.com").configure_cert(ctx)

    async def body():
        server = await websockets_peer.serve(lambda line: None, ssl=ctx)
        argv = [micropython, MP_DIR / "ws_client.py", "wss://127.0.0.1:%d" % websockets_peer.port_of(server)]
        argv.append("ca=%s" % ca_der(tmp_path))
        try:
            async with await Peer.start(argv, env=mp_env(MP_DIR, LIB), cwd=MP_DIR, port_timeout=None) as client:
                code = await client.finish(30)
                assert code != 0, client.output()
                assert not any(ln.startswith("subprotocol") for ln in client.lines), client.output()
                assert "Error" in client.output(), client.output()
        finally:
            server.close()
            await server.wait_closed()

    run(body())


_CLOSE_TIMING_CLIENT = """
import asyncio, ssl, sys, time
import microws

async def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_NONE
    ws = await microws.connect(sys.argv[1], ssl=ctx, ping_interval=None, close_timeout=5)
    start = time.ticks_ms()
    await ws.close()
    print("CLOSED", ws.close_code, time.ticks_diff(time.ticks_ms(), start))

asyncio.run(main())
"""


def test_micropython_client_closes_wss_without_waiting_out_close_timeout(micropython, device_test_certs, tmp_path):
    # An asyncio server sends its close frame and TLS close_notify, then waits for our
    # close_notify before it closes TCP; MicroPython's TLS takes that close_notify
    # silently, so a client waiting for the server's FIN waited the whole close_timeout
    # (5 s here, 10 s by default) on every close.
    script = tmp_path / "close_timing.py"
    script.write_text(_CLOSE_TIMING_CLIENT)

    async def body():
        server = await websockets_peer.serve(lambda line: None, ssl=server_ssl(device_test_certs))
        argv = [micropython, script, "wss://127.0.0.1:%d/" % websockets_peer.port_of(server)]
        try:
            async with await Peer.start(argv, env=mp_env(LIB), port_timeout=None) as client:
                assert await client.finish(30) == 0, client.output()
                closed = [ln for ln in client.lines if ln.startswith("CLOSED")]
                assert closed, client.output()
                _, code, ms = closed[0].split()
                assert code == "1000" and int(ms) < 2500, client.output()
        finally:
            server.close()
            await server.wait_closed()

    run(body())
