"""The server's plain HTTP answers: failed handshakes, 503, and pages from ``http_handler``.

Imported on first use: a server whose clients all upgrade never loads it (heap).
"""

REASONS = {101: "Switching Protocols", 200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 414: "URI Too Long", 426: "Upgrade Required",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


def build_response(status, headers=None, body=None):
    """HTTP/1.1 response bytes (the 101 is ``handshake_server.accept_response``)."""
    lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Error" if status >= 400 else "OK"))]
    if headers:
        for name, value in headers.items() if hasattr(headers, "items") else headers:
            lines.append("%s: %s" % (name, value))
    if body is None:
        body = b""
    if status != 101:
        if isinstance(body, str):
            body = body.encode()
        lines.append("Content-Length: %d" % len(body))
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def error_response(err):
    """Response bytes for a failed handshake (426 also names the version we speak, 405 the method)."""
    headers = [("Content-Type", "text/plain")]
    if err.status == 426:
        headers.append(("Sec-WebSocket-Version", "13"))
        headers.append(("Upgrade", "websocket"))
    elif err.status == 405:
        headers.append(("Allow", "GET"))  # RFC 9110 15.5.6: a 405 must list what is allowed
    return build_response(err.status, headers, str(err) + "\n")


async def http_response(http_handler, request):
    """Bytes answering a plain HTTP request: what ``http_handler`` returns, 404 for None,
    500 when it raises (printed; the server keeps serving)."""
    try:
        result = http_handler(request)
        if hasattr(result, "send"):  # a coroutine
            result = await result
        if result is None:
            return build_response(404, [("Content-Type", "text/plain")], "not found\n")
        status, headers, body = result
        return build_response(status, headers, body)
    except MemoryError:
        raise  # the server answers 503 with a response that needs no heap
    except Exception as e:
        from .server import _print_exc

        _print_exc(e)
        return build_response(500, [("Content-Type", "text/plain")], "internal error\n")
