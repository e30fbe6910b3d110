"""A real headless Chromium against a microws server on the unix-port MicroPython.

The page (mp/page.html) is served by the same microws server through its
``http_handler``; Playwright loads it and runs its session: text and binary of every
size both ways, fragmented messages from the server, the server's ping (answered
by the browser), close codes and reasons both ways, subprotocol negotiation.
"""

import json

import pytest
from headless import CHROMIUM_ARGS, chromium_path
from peerproc import LIB, MP_DIR, Peer, mp_env, require, run
from websockets_peer import check_server_closes, sc

# What a page cannot do: fragment its own sends, ping, or cap message size.
NOT_IN_BROWSER = {"send fragmented text ok", "send fragmented binary ok", "client ping ok", "too big 1009"}


def chromium_exe():
    exe = chromium_path()
    require(exe is not None, "chromium (apt-get install chromium)")
    return exe


@pytest.mark.parametrize("secure", [False, True], ids=["http-ws", "https-wss"])
def test_chromium_page_served_by_micropython_server_talks_websocket_both_ways(micropython, device_test_certs, secure):
    exe = chromium_exe()
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        async_playwright = None
    require(async_playwright is not None, "playwright (python)")
    cfg = {
        "sizes": sc.SIZES,
        "offered": sc.OFFERED,
        "unicode": sc.UNICODE,
        "frag_text": sc.FRAG_TEXT,
        "client_close": sc.CLIENT_CLOSE,
        "server_close": sc.SERVER_CLOSE,
    }

    async def body():
        argv = [micropython, MP_DIR / "ws_server.py", "page=%s" % (MP_DIR / "page.html")]
        if secure:
            argv.append("certdir=%s" % device_test_certs)
        async with await Peer.start(argv, env=mp_env(MP_DIR, LIB), cwd=MP_DIR) as server:
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
                try:
                    # The test CA is not in Chromium's store; trust is checked elsewhere.
                    context = await browser.new_context(ignore_https_errors=secure)
                    page = await context.new_page()
                    resp = await page.goto("%s://127.0.0.1:%d/" % ("https" if secure else "http", server.port))
                    assert resp.status == 200, server.output()
                    assert await page.title() == "microws interop page"
                    lines = await page.evaluate("(cfg) => runSession(cfg)", json.loads(json.dumps(cfg)))
                finally:
                    await browser.close()
            want = [ln for ln in sc.expected_client_transcript() if ln not in NOT_IN_BROWSER]
            assert lines == want, server.output()
            want_closes = sorted(["CLOSE %d %s" % sc.CLIENT_CLOSE, "CLOSE %d %s" % sc.SERVER_CLOSE, "CLOSE 1000 done"])
            await check_server_closes(server, 3, want_closes)

    run(body(), timeout=90)
