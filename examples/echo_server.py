import asyncio
import microws

async def echo(ws):
    async for msg in ws:
        await ws.send(msg)

async def main():
    await microws.serve(echo, "0.0.0.0", 8080)
    await asyncio.Event().wait()  # serve until the board resets

asyncio.run(main())
