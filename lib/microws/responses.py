"""The server's plain HTTP answers: failed handshakes, 503, and pages from ``http_handler``.

Imported on first use: a server whose clients all upgrade never loads it (heap).
"""

from .errors import error_text
from .frames import const  # MicroPython's, or a stand-in on CPython

# Error texts, by number into texts.T (see errors.error_text).
_E_HEADER_CRLF = const(47)

REASONS = {200: "OK", 204: "No Content", 304: "Not Modified", 400: "Bad Request", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 414: "URI Too Long", 426: "Upgrade Required",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}
# The framing headers are ours (the server closes after one response); the caller's are dropped.
_OURS = ("content-length", "connection", "transfer-encoding")


def build_response(status, headers=None, body=None, head=False):
    """HTTP/1.1 response bytes, then the server closes (the 101 is ``handshake_server.accept_response``).

    ``Content-Length`` is the body's, none for 1xx, 204 and 304, which have no body
    (RFC 9110 6.4.1, 8.6); ``head``: the answer to HEAD, the same head without the
    body (RFC 9110 9.3.2). A CR or LF in ``headers`` (response splitting) raises ValueError.
    """
    lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Error" if status >= 400 else "OK"))]
    if headers:
        for name, value in headers.items() if hasattr(headers, "items") else headers:
            line = "%s: %s" % (name, value)
            if "\r" in line or "\n" in line:
                raise ValueError(error_text(_E_HEADER_CRLF))  # no value in it: it may be a secret
            if name.lower() not in _OURS:
                lines.append(line)
    if isinstance(body, str):
        body = body.encode()
    if status < 200 or status == 204 or status == 304:
        body = None
    else:
        lines.append("Content-Length: %d" % (len(body) if body else 0))
    lines.append("Connection: close")
    out = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return out + body if body and not head else out


def error_response(err):
    """Response bytes for a failed handshake (426 also names the version we speak, 405 the method)."""
    headers = [("Content-Type", "text/plain")]
    if err.status == 426:
        headers.append(("Sec-WebSocket-Version", "13"))
        headers.append(("Upgrade", "websocket"))
    elif err.status == 405:
        headers.append(("Allow", "GET"))  # RFC 9110 15.5.6: a 405 must list what is allowed
    elif err.status == 503:
        headers.append(("Retry-After", "1"))
    return build_response(err.status, headers, str(err) + "\n")


async def http_response(http_handler, request):
    """Bytes answering a plain HTTP request: what ``http_handler`` returns, 404 for None,
    500 when it raises (printed; the server keeps serving) or its headers hold a CR or LF.
    A HEAD request gets the head alone."""
    head = request.method == "HEAD"
    try:
        result = http_handler(request)
        if hasattr(result, "send"):  # a coroutine
            result = await result
        if result is None:
            return build_response(404, [("Content-Type", "text/plain")], "not found\n", head)
        status, headers, body = result
        return build_response(status, headers, body, head)
    except MemoryError:
        raise  # the server answers 503 with a response that needs no heap
    except Exception as e:
        from .server import _print_exc

        _print_exc(e)
        return build_response(500, [("Content-Type", "text/plain")], "internal error\n", head)
