"""Interop with Node's ``ws`` (npm, pinned in tests/node) as server and as client.

microws runs under the unix-port MicroPython; both sides speak mp/scenarios.py's
language (the JS peers are tests/node/ws_server.js and ws_client.js, constants
handed over as JSON so they are defined once).
"""

import json

import pytest
from peerproc import LIB, MP_DIR, NODE_DIR, Peer, ca_der, mp_env, node_exe, run
from websockets_peer import check_client_run, check_server_closes, sc

CFG = json.dumps(
    {
        "sizes": sc.SIZES,
        "max_size": sc.MAX_SIZE,
        "subprotocols": sc.SUBPROTOCOLS,
        "offered": sc.OFFERED,
        "unicode": sc.UNICODE,
        "frag_text": sc.FRAG_TEXT,
        "client_close": sc.CLIENT_CLOSE,
        "server_close": sc.SERVER_CLOSE,
    }
)


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_micropython_client_talks_to_node_ws_server(micropython, device_test_certs, secure):
    node = node_exe()

    async def body():
        argv = [node, NODE_DIR / "ws_server.js", "cfg=" + CFG]
        if secure:
            argv.append("certdir=%s" % device_test_certs)
        async with await Peer.start(argv, cwd=NODE_DIR) as server:
            url = "%s://127.0.0.1:%d" % ("wss" if secure else "ws", server.port)
            argv = [micropython, MP_DIR / "ws_client.py", url]
            if secure:
                argv.append("ca=%s" % ca_der(device_test_certs))
            async with await Peer.start(argv, env=mp_env(MP_DIR, LIB), cwd=MP_DIR, port_timeout=None) as client:
                await check_client_run(client)
            await check_server_closes(server)

    run(body())


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_node_ws_client_talks_to_micropython_server(micropython, device_test_certs, secure):
    node = node_exe()

    async def body():
        argv = [micropython, MP_DIR / "ws_server.py"]
        if secure:
            argv.append("certdir=%s" % device_test_certs)
        async with await Peer.start(argv, env=mp_env(MP_DIR, LIB), cwd=MP_DIR) as server:
            url = "%s://127.0.0.1:%d" % ("wss" if secure else "ws", server.port)
            argv = [node, NODE_DIR / "ws_client.js", "url=" + url, "cfg=" + CFG]
            if secure:
                argv.append("ca=%s" % (device_test_certs / "ca.pem"))
            async with await Peer.start(argv, cwd=NODE_DIR, port_timeout=None) as client:
                await check_client_run(client)
            await check_server_closes(server)

    run(body())
