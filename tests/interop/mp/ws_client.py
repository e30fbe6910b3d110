"""MicroPython peer: run scenarios.client_session against a server, print the transcript.

Usage: micropython ws_client.py ws://127.0.0.1:PORT [ca=ca.der]
``ca`` (DER) turns on certificate verification for wss:// URLs.
"""

import asyncio
import sys

import scenarios


def _ssl_context(ca):
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    with open(ca, "rb") as f:
        ctx.load_verify_locations(cadata=f.read())
    return ctx


async def main():
    url = sys.argv[1]
    ctx = None
    for a in sys.argv[2:]:
        if a.startswith("ca="):
            ctx = _ssl_context(a[3:])
    await scenarios.client_session(url, print, ssl=ctx)


asyncio.run(main())
