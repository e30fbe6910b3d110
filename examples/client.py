import asyncio
import microws

async def main():
    ws = await microws.connect("ws://127.0.0.1:8080/")
    await ws.send("hello")
    print(await ws.recv())
    await ws.close()

asyncio.run(main())
