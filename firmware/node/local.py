"""Local mode: the board serves its own page and a WebSocket, no host needed.

``GET /`` returns one small page (HTML + JS, under 1 KB, kept as bytes in flash when
frozen); the page opens ``/ws`` and shows every reading live. A browser can switch
the LED with ``{"led": true|false}``. At most ``MAX_CLIENTS`` browsers at once: each
connection costs heap.
"""

import asyncio
import json

from microws.errors import ConnectionClosed
from microws.server import serve

MAX_CLIENTS = 3

PAGE = b"""<!doctype html><meta name=viewport content="width=device-width"><title>microws node</title>
<h3 id=h>microws node</h3><table id=t></table><button id=b>LED</button><script>
var l=false,u={},w=new WebSocket("ws://"+location.host+"/ws");
b.onclick=function(){l=!l;w.send(JSON.stringify({led:l}))};
w.onclose=function(){setTimeout(function(){location.reload()},3000)};
w.onmessage=function(e){var m=JSON.parse(e.data),k,r="";if(m.sensors){u=m.sensors;h.textContent=m.id;return}
for(k in m.d)r+="<tr><td>"+k+"<td>"+m.d[k]+" "+(u[k]||"");t.innerHTML=r+"<tr><td>seq<td>"+m.seq}
</script>
"""
_HEADERS = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-cache")]


class LocalServer:
    """The node's own HTTP + WebSocket server (microws.serve)."""

    def __init__(self, node, port):
        self.node = node
        self.port = port
        self.clients = []
        self.server = None

    async def start(self):
        """Listen on every interface at ``port``."""
        self.server = await serve(
            self._client, "0.0.0.0", self.port, http_handler=self._http, max_connections=MAX_CLIENTS
        )
        print("microws-node: local page on port %d" % self.server.port)

    def _http(self, request):
        if request.method == "GET" and request.path == "/":
            return 200, _HEADERS, PAGE
        return None  # 404

    async def _client(self, ws):
        if ws.path != "/ws":
            await ws.close(1008, "use /ws")
            return
        node = self.node
        await ws.send(json.dumps({"id": node.id, "sensors": node.sensors.units}))
        self.clients.append(ws)
        try:
            while True:
                msg = json.loads(await ws.recv())
                if isinstance(msg, dict) and isinstance(msg.get("led"), bool):
                    node.set_led(msg["led"])
        except (ConnectionClosed, ValueError):
            pass  # gone, or sent something that is not JSON: either way, done
        finally:
            self.clients.remove(ws)

    def publish(self, seq, ts, values):
        """Send a reading to every open page (each send in its own task: a slow page waits alone)."""
        if not self.clients:
            return
        d = {}
        for i, name in enumerate(self.node.sensors.names):
            v = values[i]
            if v is not None:
                d[name] = round(v, 2)
        text = json.dumps({"seq": seq, "ts": ts, "d": d})
        for ws in self.clients:
            asyncio.create_task(_send(ws, text))


async def _send(ws, text):
    try:
        await ws.send(text)
    except Exception:  # the reader side notices the close and drops the client
        pass
