// microws dashboard: one card per device, a live chart per sensor, commands back.
// Self-contained (no CDN): labs and factory floors are often offline.
// On open it loads /api/devices and each device's history, then goes live over
// /ws (WebSocket), falling back to /events (SSE) when WebSocket cannot connect.
"use strict";

(() => {
  const WINDOW_MS = 120 * 1000; // how much time a chart shows
  const MAX_POINTS = 2000; // per sensor, in memory
  const token = new URLSearchParams(location.search).get("token");
  const devices = new Map(); // id -> {info, sensors: Map(name -> {points, unit, el}), el}
  let transport = null; // {kind, send(obj) -> bool, close()}
  let wsFailures = 0;
  let retryDelay = 500;
  let requestSeq = 0;

  // -- URLs ---------------------------------------------------------------------

  function withToken(path) {
    if (!token) return path;
    return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
  }

  function wsUrl(path) {
    const u = new URL(withToken(path), location.href);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    return u.href;
  }

  async function getJSON(path) {
    const r = await fetch(withToken(path), { cache: "no-store" });
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  }

  // -- state --------------------------------------------------------------------

  async function loadAll() {
    const list = await getJSON("api/devices");
    await Promise.all(list.map(async (info) => {
      const dev = upsertDevice(info);
      for (const [name, l] of Object.entries(info.latest || {})) ensureSensor(dev, name).latest = l.value;
      try {
        const h = await getJSON("api/devices/" + encodeURIComponent(info.id) + "/history");
        for (const [name, points] of Object.entries(h.sensors)) {
          const s = ensureSensor(dev, name);
          s.points = points.filter((p) => typeof p[1] === "number").slice(-MAX_POINTS);
          if (points.length) s.latest = points[points.length - 1][1];
          markDirty(s);
        }
      } catch (e) { console.warn(e); }
      renderValues(dev);
    }));
    updateSummary();
  }

  function upsertDevice(info) {
    let dev = devices.get(info.id);
    if (!dev) {
      dev = { info: {}, sensors: new Map(), el: makeCard(info.id), ledOn: null };
      devices.set(info.id, dev);
      document.getElementById("devices").appendChild(dev.el.root);
    }
    const seen = Math.max(dev.info.last_seen || 0, info.last_seen || 0);
    Object.assign(dev.info, info);
    dev.info.last_seen = seen;
    for (const [name, unit] of Object.entries(info.sensors || {})) ensureSensor(dev, name).unit = unit;
    renderInfo(dev);
    return dev;
  }

  function ensureSensor(dev, name) {
    let s = dev.sensors.get(name);
    if (!s) {
      s = { name, unit: (dev.info.sensors || {})[name] || "", points: [], latest: null, el: null, dirty: true };
      s.el = makeSensor(name);
      dev.el.sensors.appendChild(s.el.root);
      dev.sensors.set(name, s);
    }
    return s;
  }

  function handle(msg) {
    if (msg.t === "tm") {
      const dev = devices.get(msg.dev) || upsertDevice({ id: msg.dev, online: true });
      dev.info.last_seen = Math.max(dev.info.last_seen || 0, msg.rx || msg.ts || Date.now());
      if (!dev.info.online) { dev.info.online = true; renderInfo(dev); }
      for (const [name, value] of Object.entries(msg.d || {})) {
        const s = ensureSensor(dev, name);
        s.latest = value;
        if (typeof value === "number") {
          s.points.push([msg.ts, value]);
          if (s.points.length > MAX_POINTS) s.points.splice(0, s.points.length - MAX_POINTS);
          markDirty(s);
        }
      }
      renderValues(dev);
    } else if (msg.t === "dev") {
      upsertDevice(msg.dev);
      updateSummary();
    } else if (msg.t === "res") {
      showResult(msg);
    } else if (msg.t === "err") {
      console.warn("bridge says:", msg.msg);
    }
  }

  // -- rendering ----------------------------------------------------------------

  function makeCard(id) {
    const root = document.getElementById("card-template").content.firstElementChild.cloneNode(true);
    root.dataset.device = id;
    const q = (sel) => root.querySelector(sel);
    const el = {
      root, sensors: q(".sensors"), online: q(".online"), seen: q(".seen"), result: q(".result"),
      board: q(".board"), fw: q(".fw"), transport: q(".transport"), led: q(".led-state"),
      interval: q("input.interval"), dropped: q(".dropped"),
    };
    q(".dev-id").textContent = id;
    for (const b of root.querySelectorAll("button[data-cmd=led]")) {
      b.addEventListener("click", () => sendCommand(id, "led", { on: b.dataset.on === "true" }));
    }
    q(".interval-control").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const ms = parseInt(el.interval.value, 10);
      if (ms > 0) sendCommand(id, "interval", { ms });
    });
    return el;
  }

  function makeSensor(name) {
    const root = document.getElementById("sensor-template").content.firstElementChild.cloneNode(true);
    root.dataset.sensor = name;
    root.querySelector(".name").textContent = name;
    return { root, value: root.querySelector(".value"), canvas: root.querySelector("canvas"),
      lo: root.querySelector(".lo"), hi: root.querySelector(".hi") };
  }

  function renderInfo(dev) {
    const { info, el } = dev;
    el.root.dataset.online = String(!!info.online);
    el.online.dataset.online = String(!!info.online);
    el.online.textContent = info.online ? "online" : "offline";
    el.board.textContent = info.board || "";
    el.fw.textContent = info.fw ? "fw " + info.fw : "";
    el.transport.textContent = info.transport || "";
    if (info.interval && document.activeElement !== el.interval) el.interval.value = info.interval;
    el.dropped.hidden = !info.dropped;
    el.dropped.textContent = info.dropped ? info.dropped + " readings lost on the device (outbox overflow)" : "";
    for (const b of el.root.querySelectorAll("button")) b.disabled = !info.online;
    renderAge(dev);
  }

  function renderValues(dev) {
    for (const s of dev.sensors.values()) {
      s.unit = (dev.info.sensors || {})[s.name] || s.unit;
      s.el.value.textContent = s.latest === null ? "—" : formatValue(s.latest) + (s.unit ? " " + s.unit : "");
    }
  }

  function formatValue(v) {
    if (typeof v !== "number") return String(v);
    return Math.abs(v) >= 1000 || Number.isInteger(v) ? String(Math.round(v * 100) / 100) : v.toFixed(2);
  }

  function renderAge(dev) {
    const seen = dev.info.last_seen;
    if (!seen) { dev.el.seen.textContent = "never seen"; return; }
    const s = Math.max(0, Math.round((Date.now() - seen) / 1000));
    const text = s < 60 ? s + " s" : s < 3600 ? Math.floor(s / 60) + " min" : Math.floor(s / 3600) + " h";
    dev.el.seen.textContent = "seen " + text + " ago";
    dev.el.seen.dataset.ageSeconds = String(s);
  }

  function updateSummary() {
    const n = devices.size;
    const online = [...devices.values()].filter((d) => d.info.online).length;
    document.getElementById("device-count").textContent = n + (n === 1 ? " device" : " devices") + ", " + online + " online";
    document.getElementById("empty").hidden = n > 0;
  }

  function setConn(state, text) {
    const el = document.getElementById("conn");
    el.dataset.state = state;
    el.textContent = text;
  }

  // -- charts (own canvas code) -------------------------------------------------

  let frameRequested = false;
  function markDirty(s) {
    s.dirty = true;
    if (!frameRequested) { frameRequested = true; requestAnimationFrame(drawDirty); }
  }

  function drawDirty() {
    frameRequested = false;
    for (const dev of devices.values()) {
      for (const s of dev.sensors.values()) if (s.dirty) { s.dirty = false; drawChart(s); }
    }
  }

  function drawChart(s) {
    const canvas = s.el.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
    const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    const end = s.points.length ? s.points[s.points.length - 1][0] : Date.now();
    const start = end - WINDOW_MS;
    const pts = s.points.filter((p) => p[0] >= start);
    canvas.dataset.points = String(pts.length);
    if (pts.length === 0) return;
    let lo = Infinity, hi = -Infinity;
    for (const p of pts) { if (p[1] < lo) lo = p[1]; if (p[1] > hi) hi = p[1]; }
    const pad = (hi - lo) * 0.1 || Math.abs(hi) * 0.05 || 1;
    const ymin = lo - pad, ymax = hi + pad;
    const t0 = Math.min(pts[0][0], end - 10 * 1000); // at least 10 s wide so the first points spread
    const x = (t) => ((t - t0) / Math.max(1, end - t0)) * (w - 4 * dpr) + 2 * dpr;
    const y = (v) => h - ((v - ymin) / (ymax - ymin)) * (h - 8 * dpr) - 4 * dpr;
    // grid
    ctx.strokeStyle = "#223040";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let i = 1; i < 4; i++) { const gy = Math.round((h * i) / 4) + 0.5; ctx.moveTo(0, gy); ctx.lineTo(w, gy); }
    ctx.stroke();
    // area + line
    ctx.beginPath();
    pts.forEach((p, i) => (i ? ctx.lineTo(x(p[0]), y(p[1])) : ctx.moveTo(x(p[0]), y(p[1]))));
    ctx.strokeStyle = "#4cc2ff";
    ctx.lineWidth = 2 * dpr;
    ctx.lineJoin = "round";
    ctx.stroke();
    ctx.lineTo(x(pts[pts.length - 1][0]), h);
    ctx.lineTo(x(pts[0][0]), h);
    ctx.closePath();
    ctx.fillStyle = "rgba(76, 194, 255, 0.12)";
    ctx.fill();
    // last point
    const last = pts[pts.length - 1];
    ctx.fillStyle = "#4cc2ff";
    ctx.beginPath();
    ctx.arc(x(last[0]), y(last[1]), 3 * dpr, 0, Math.PI * 2);
    ctx.fill();
    s.el.lo.textContent = "min " + formatValue(lo);
    s.el.hi.textContent = "max " + formatValue(hi);
    canvas.dataset.drawnAt = String(Date.now());
  }

  // -- commands -----------------------------------------------------------------

  const pending = new Map(); // request id -> {dev, name, args}

  async function sendCommand(devId, name, args) {
    const id = "b" + (++requestSeq);
    pending.set(id, { dev: devId, name, args });
    const dev = devices.get(devId);
    dev.el.result.dataset.ok = "";
    dev.el.result.textContent = name + " " + JSON.stringify(args) + " …";
    if (transport && transport.send({ t: "cmd", dev: devId, name, args, id })) return;
    // SSE has no way back: commands go over REST.
    try {
      const r = await fetch(withToken("api/devices/" + encodeURIComponent(devId) + "/cmd"), {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name, args, id }),
      });
      showResult(await r.json());
    } catch (e) {
      showResult({ dev: devId, id, ok: false, err: String(e) });
    }
  }

  function showResult(msg) {
    const req = pending.get(msg.id);
    pending.delete(msg.id);
    const dev = devices.get(msg.dev);
    if (!dev) return;
    const name = req ? req.name : "command";
    const el = dev.el.result;
    el.dataset.ok = String(!!msg.ok);
    el.textContent = msg.ok ? name + " → ok " + (msg.v === undefined ? "" : JSON.stringify(msg.v)) : name + " → error: " + msg.err;
    if (msg.ok && req && req.name === "led") {
      const on = msg.v && typeof msg.v === "object" && "on" in msg.v ? !!msg.v.on : !!req.args.on;
      dev.el.led.dataset.led = on ? "on" : "off";
      dev.el.led.textContent = on ? "on" : "off";
    }
    if (msg.ok && req && req.name === "interval") dev.info.interval = req.args.ms;
  }

  // -- transports ---------------------------------------------------------------

  function connect() {
    if (wsFailures >= 2 && "EventSource" in window) return connectSSE();
    let opened = false;
    let ws;
    try { ws = new WebSocket(wsUrl("ws"), ["microws.v1"]); } catch (e) { wsFailures++; return retry(); }
    transport = {
      kind: "ws",
      send: (obj) => { if (ws.readyState !== 1) return false; ws.send(JSON.stringify(obj)); return true; },
      close: () => ws.close(),
    };
    ws.onopen = () => {
      opened = true; wsFailures = 0; retryDelay = 500;
      ws.send(JSON.stringify({ t: "sub", devices: "*" }));
      setConn("live", "live · WebSocket");
    };
    ws.onmessage = (ev) => handle(JSON.parse(ev.data));
    ws.onclose = () => {
      transport = null;
      if (!opened) wsFailures++;
      retry();
    };
  }

  function connectSSE() {
    const es = new EventSource(withToken("events"));
    transport = { kind: "sse", send: () => false, close: () => es.close() };
    es.onopen = () => { retryDelay = 500; setConn("live", "live · SSE"); };
    es.onmessage = (ev) => handle(JSON.parse(ev.data));
    es.onerror = () => {
      // EventSource retries by itself; show it, and reload state once it is back.
      setConn("reconnecting", "reconnecting (SSE)…");
      if (es.readyState === EventSource.CLOSED) { transport = null; wsFailures = 0; retry(); }
    };
  }

  function retry() {
    setConn("reconnecting", "reconnecting…");
    const delay = retryDelay;
    retryDelay = Math.min(retryDelay * 2, 10000);
    // Readings missed while away come back from the history rings.
    setTimeout(() => loadAll().catch(() => {}).finally(connect), delay);
  }

  // -- start --------------------------------------------------------------------

  setInterval(() => { for (const dev of devices.values()) renderAge(dev); }, 1000);
  window.addEventListener("resize", () => { for (const d of devices.values()) for (const s of d.sensors.values()) markDirty(s); });
  window.microwsDashboard = { devices, get transport() { return transport && transport.kind; } };
  loadAll().catch((e) => console.warn(e)).finally(connect);
})();
