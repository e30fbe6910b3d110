// Node `ws` peer: the interop client session (tests/interop/mp/scenarios.py client_session),
// printing the same transcript. Usage: node ws_client.js url=<base> cfg=<json> [ca=ca.pem]
'use strict';

const fs = require('fs');
const WebSocket = require('ws');
const { textOf, bytesOf, thirds, sendFragments, parseArgs } = require('./interop_common');

const opts = parseArgs(process.argv.slice(2));
const cfg = JSON.parse(opts.cfg);
const tls = opts.ca ? { ca: fs.readFileSync(opts.ca) } : {};

// A WebSocket with a pull API: await recv() resolves the next message or rejects
// with {code, reason, error} once the connection is closed.
function open(url, protocols, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { ...tls, ...options });
    const queue = [];
    const waiters = [];
    const conn = { ws, closed: null, error: null, pongs: 0 };
    const settle = () => {
      while (waiters.length && (queue.length || conn.closed)) {
        const w = waiters.shift();
        if (queue.length) w.resolve(queue.shift());
        else w.reject(conn.closed);
      }
    };
    conn.recv = () => new Promise((res, rej) => { waiters.push({ resolve: res, reject: rej }); settle(); });
    conn.whenClosed = new Promise((res) => ws.on('close', (code, reason) => {
      conn.closed = { code, reason: reason.toString(), error: conn.error };
      settle();
      res(conn.closed);
    }));
    ws.on('message', (data, isBinary) => { queue.push(isBinary ? data : data.toString()); settle(); });
    ws.on('pong', () => { conn.pongs += 1; });
    ws.on('error', (e) => { conn.error = e; if (ws.readyState === WebSocket.CONNECTING) reject(e); });
    ws.on('open', () => resolve(conn));
  });
}

const verdict = (ok, got) => (ok ? 'ok' : `BAD ${typeof got === 'string' ? JSON.stringify(got.slice(0, 60)) : typeof got}`);
const isBuf = (x) => Buffer.isBuffer(x);

async function echo(c, msg) {
  c.ws.send(msg);
  return c.recv();
}

async function expectClose(c, fmt) {
  try {
    const r = await c.recv();
    console.log(`BAD no close, got ${r.length}`);
  } catch (closed) {
    console.log(fmt(closed));
  }
}

async function main() {
  const base = opts.url;
  let c = await open(base + '/proto', cfg.offered, { maxPayload: cfg.max_size });
  console.log(`subprotocol ${c.ws.protocol}`);
  const greeting = await c.recv();
  if (greeting !== 'subprotocol microws.v1') console.log(`BAD greeting ${greeting}`);
  for (const n of cfg.sizes) {
    const t = textOf(n);
    let r = await echo(c, t);
    console.log(`text ${n} ${verdict(r === t, r)}`);
    const b = bytesOf(n);
    r = await echo(c, b);
    console.log(`binary ${n} ${verdict(isBuf(r) && r.equals(b), r)}`);
  }
  let r = await echo(c, cfg.unicode);
  console.log(`unicode ${verdict(r === cfg.unicode, r)}`);
  sendFragments(c.ws, thirds(cfg.frag_text), false);
  r = await c.recv();
  console.log(`send fragmented text ${verdict(r === cfg.frag_text, r)}`);
  const big = bytesOf(70000);
  sendFragments(c.ws, [big.slice(0, 1000), big.slice(1000, 1001), big.slice(1001)], true);
  r = await c.recv();
  console.log(`send fragmented binary ${verdict(isBuf(r) && r.equals(big), r)}`);
  c.ws.send('cmd:frag:70000');
  r = await c.recv();
  console.log(`recv fragmented binary ${verdict(isBuf(r) && r.equals(big), r)}`);
  r = await c.recv();
  console.log(`recv fragmented text ${verdict(r === cfg.frag_text, r)}`);
  c.ws.ping(Buffer.from('client-ping'));
  r = await echo(c, 'after ping');
  console.log(`client ping ${verdict(c.pongs === 1 && r === 'after ping', r)}`);
  c.ws.send('cmd:ping');
  r = await c.recv();
  if (r === 'ping-sent') r = await echo(c, 'ping-check');
  console.log(`server ping ${r}`);
  c.ws.close(cfg.client_close[0], cfg.client_close[1]);
  const closed = await c.whenClosed;
  console.log(`client close ${closed.code} ${closed.reason}`);

  c = await open(base + '/', undefined, {});
  console.log(`no subprotocol ${c.ws.protocol || 'None'}`);
  c.ws.send(`cmd:close:${cfg.server_close[0]}:${cfg.server_close[1]}`);
  await expectClose(c, (e) => `server close ${e.code} ${e.reason}`);

  c = await open(base + '/', undefined, {});
  c.ws.send('cmd:close:1000:done');
  await expectClose(c, (e) => `server close ${e.code} ${e.reason} OK`);

  c = await open(base + '/', undefined, { maxPayload: 65536 });
  c.ws.send('cmd:big:100000');
  await expectClose(c, (e) => `too big ${e.error && e.error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 1009 : e.code}`);
  console.log('DONE');
}

main().catch((e) => {
  console.log(`FAILED ${e && e.stack ? e.stack : JSON.stringify(e)}`);
  process.exit(1);
});
