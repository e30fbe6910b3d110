"""The dashboard in a real headless Chromium (Playwright): live values, the chart
drawing, and the LED control round trip to a simulated board."""

import asyncio
import contextlib
import math

from bridge_support import ROOT, TS, WAIT, device, hello, is_type, require_tool, run, running_bridge
from headless import CHROMIUM_ARGS, chromium_path

CHROMIUM = chromium_path() or "/usr/bin/chromium"


@contextlib.asynccontextmanager
async def simulated_board(srv, device_id, period=0.1):
    """A board (a `websockets` client) streaming temp/humidity and obeying `led`."""
    async with device(srv) as d:
        await d.send(hello(device_id, sensors={"temp": "C", "humidity": "%"}, interval=int(period * 1000)))
        state = {"led": False, "commands": []}

        async def stream():
            seq = 0
            while True:
                seq += 1
                t = seq * period
                values = {"temp": round(21 + 3 * math.sin(t), 2), "humidity": round(40 + 5 * math.cos(t / 2), 1)}
                await d.send({"t": "tm", "boot": "boot-1", "seq": seq, "ts": TS + seq * 100, "d": values})
                await asyncio.sleep(period)  # the board's sampling period, not synchronisation

        async def obey():
            while True:
                cmd = await d.expect(is_type("cmd"), timeout=3600)
                state["commands"].append(cmd)
                if cmd["name"] == "led":
                    state["led"] = bool(cmd["args"].get("on"))
                    await d.send({"t": "res", "id": cmd["id"], "ok": True, "v": {"on": state["led"]}})
                else:
                    await d.send({"t": "res", "id": cmd["id"], "ok": True, "v": {}})

        tasks = [asyncio.ensure_future(stream()), asyncio.ensure_future(obey())]
        try:
            yield state
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _canvas_ink(page, selector):
    """How many pixels of the canvas are not blank (the chart really drew)."""
    return await page.eval_on_selector(
        selector,
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""",
    )


def test_dashboard_shows_live_values_draws_charts_and_drives_the_led():
    exe = require_tool(CHROMIUM, "chromium")
    from playwright.async_api import async_playwright

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)

    async def body():
        async with (
            running_bridge() as srv,
            simulated_board(srv, "greenhouse-1") as board,
            simulated_board(srv, "lab-bench", period=0.25),
            async_playwright() as pw,
        ):
            chromium = await pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
            try:
                page = await chromium.new_page(viewport={"width": 1280, "height": 760})
                errors = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                await page.goto(srv.url("/"), timeout=WAIT * 1000)
                card = page.locator('article.card[data-device="greenhouse-1"]')
                await card.locator('.online[data-online="true"]').wait_for(timeout=WAIT * 1000)
                await page.locator('#conn[data-state="live"]').wait_for(timeout=WAIT * 1000)

                # Values change live.
                value = card.locator('.sensor[data-sensor="temp"] .value')
                first = await value.text_content()
                await page.wait_for_function(
                    """([sel, old]) => { const e = document.querySelector(sel); return e && e.textContent !== old; }""",
                    arg=['article[data-device="greenhouse-1"] .sensor[data-sensor="temp"] .value', first],
                    timeout=WAIT * 1000,
                )
                assert (await value.text_content()).endswith(" C")

                # The chart draws: its own data attribute counts points, and pixels are inked.
                canvas_sel = 'article[data-device="greenhouse-1"] .sensor[data-sensor="temp"] canvas'
                await page.wait_for_function(
                    f"""() => Number(document.querySelector('{canvas_sel}').dataset.points) >= 10""",
                    timeout=WAIT * 1000,
                )
                assert await _canvas_ink(page, canvas_sel) > 500

                # Last-seen age is shown.
                assert "ago" in await card.locator(".seen").text_content()

                # The LED control reaches the board, and the board's result shows on the card.
                await card.locator("button.led-on").click()
                await card.locator('.led-state[data-led="on"]').wait_for(timeout=WAIT * 1000)
                assert board["led"] is True
                assert "led → ok" in await card.locator(".result").text_content()
                await card.locator("button.led-off").click()
                await card.locator('.led-state[data-led="off"]').wait_for(timeout=WAIT * 1000)
                assert board["led"] is False

                # The interval control sends `interval` with the number typed.
                await card.locator("input.interval").fill("250")
                await card.locator(".interval-control button").click()
                await card.locator('.result[data-ok="true"]').filter(has_text="interval").wait_for(timeout=WAIT * 1000)
                assert board["commands"][-1]["name"] == "interval" and board["commands"][-1]["args"] == {"ms": 250}

                await card.locator("button.led-on").click()  # lit for the screenshot
                await card.locator('.led-state[data-led="on"]').wait_for(timeout=WAIT * 1000)
                await page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
                assert errors == []
            finally:
                await chromium.close()

    run(body(), timeout=120)


def test_dashboard_reconnects_and_falls_back_to_sse_when_websocket_is_blocked():
    exe = require_tool(CHROMIUM, "chromium")
    from playwright.async_api import async_playwright

    async def body():
        async with running_bridge() as srv, simulated_board(srv, "n1"), async_playwright() as pw:
            chromium = await pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
            try:
                page = await chromium.new_page()
                # Refuse /ws as a proxy that cannot do WebSocket would.
                await page.route("**/ws", lambda route: route.abort())
                await page.route_web_socket("**/ws", lambda ws: ws.close())
                await page.goto(srv.url("/"), timeout=WAIT * 1000)
                await page.locator("#conn", has_text="SSE").wait_for(timeout=20 * 1000)
                canvas_sel = 'article[data-device="n1"] .sensor[data-sensor="temp"] canvas'
                before = await page.eval_on_selector(canvas_sel, "c => Number(c.dataset.points)")
                await page.wait_for_function(
                    f"() => Number(document.querySelector('{canvas_sel}').dataset.points) > {before + 3}",
                    timeout=WAIT * 1000,
                )
                # Commands go over REST when the stream is one-way.
                card = page.locator('article.card[data-device="n1"]')
                await card.locator("button.led-on").click()
                await card.locator('.led-state[data-led="on"]').wait_for(timeout=WAIT * 1000)
            finally:
                await chromium.close()

    run(body(), timeout=120)
