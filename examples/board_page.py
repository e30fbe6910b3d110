# A board serving its own page on / and a WebSocket on /ws (no host needed).
import asyncio
import microws

PAGE = """<!doctype html><title>board</title><pre id=o></pre><script>
const ws = new WebSocket(`ws://${location.host}/ws`);
ws.onmessage = e => o.textContent = e.data;
</script>"""

def page(request):
    if request.path == "/":
        return 200, {"Content-Type": "text/html"}, PAGE
    return None  # 404

async def ticker(ws):
    n = 0
    while True:
        await ws.send("tick %d" % n)
        n += 1
        await asyncio.sleep(1)

async def main():
    await microws.serve({"/ws": ticker}, "0.0.0.0", 80, http_handler=page)
    await asyncio.Event().wait()

asyncio.run(main())
