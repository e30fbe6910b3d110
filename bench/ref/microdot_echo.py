"""microdot's WebSocket echo on MicroPython: a reference for the library benchmarks.

    micropython microdot_echo.py PORT MAX_SIZE     (route /echo; MICROPYPATH must hold microdot)

Exactly microdot's documented echo route; only the message size limit is raised
(``Request.max_body_length``, which its WebSocket uses) so large echoes can run.
"""

import sys

from microdot import Microdot, Request
from microdot.websocket import with_websocket

Request.max_body_length = int(sys.argv[2])
app = Microdot()


@app.route("/echo")
@with_websocket
async def echo(request, ws):
    while True:
        message = await ws.receive()
        await ws.send(message)


print("READY", sys.argv[1])
app.run(host="127.0.0.1", port=int(sys.argv[1]))
