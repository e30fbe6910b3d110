"""MicroPython peer: the interop language server (see scenarios.py) on 127.0.0.1.

Usage: micropython ws_server.py [port=0] [certdir=DIR] [page=FILE]
Prints ``PORT <n>`` first, then a ``CLOSE <code> <reason>`` line per finished
connection. ``certdir`` (cert.der + key.der) serves wss; ``page`` is served on GET /.
"""

import asyncio
import sys

import scenarios


def _args():
    opts = {"port": "0", "certdir": None, "page": None}
    for a in sys.argv[1:]:
        k, _, v = a.partition("=")
        opts[k] = v
    return opts


def _ssl_context(certdir):
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # MicroPython's mbedtls takes DER here (PEM files fail with "invalid key").
    ctx.load_cert_chain(certdir + "/cert.der", certdir + "/key.der")
    return ctx


def _page_handler(path):
    with open(path) as f:
        body = f.read()

    def http_handler(request):
        if request.method == "GET" and request.path == "/":
            return 200, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")], body
        return None

    return http_handler


async def main():
    opts = _args()
    ctx = _ssl_context(opts["certdir"]) if opts["certdir"] else None
    page = _page_handler(opts["page"]) if opts["page"] else None
    server = await scenarios.serve(print, int(opts["port"]), ssl=ctx, http_handler=page)
    print("PORT", server.port)
    await scenarios.run_forever()


asyncio.run(main())
