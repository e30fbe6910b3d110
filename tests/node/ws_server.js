// Node `ws` peer: the interop language server on 127.0.0.1 (see tests/interop/mp/scenarios.py).
// Usage: node ws_server.js cfg=<json> [certdir=DIR]. Prints "PORT <n>", then
// "CLOSE <code> <reason>" per finished connection.
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const { WebSocketServer } = require('ws');
const { bytesOf, thirds, sendFragments, parseArgs } = require('./interop_common');

const opts = parseArgs(process.argv.slice(2));
const cfg = JSON.parse(opts.cfg);

const web = opts.certdir
  ? https.createServer({ cert: fs.readFileSync(opts.certdir + '/cert.pem'), key: fs.readFileSync(opts.certdir + '/key.pem') })
  : http.createServer();

const wss = new WebSocketServer({
  server: web,
  maxPayload: cfg.max_size,
  handleProtocols: (offered) => cfg.subprotocols.find((p) => offered.has(p)) || false,
});

wss.on('connection', (ws, req) => {
  let pongSeen = false;
  let awaitingCheck = false;
  ws.on('pong', () => { pongSeen = true; });
  ws.on('close', (code, reason) => console.log(`CLOSE ${code} ${reason.toString()}`));
  ws.on('error', () => {});
  if (req.url === '/proto') ws.send(`subprotocol ${ws.protocol}`);
  ws.on('message', (data, isBinary) => {
    if (isBinary) return ws.send(data, { binary: true });
    const msg = data.toString();
    if (awaitingCheck) {
      awaitingCheck = false;
      return ws.send(pongSeen && msg === 'ping-check' ? 'pong-ok' : 'pong-missing');
    }
    if (!msg.startsWith('cmd:')) return ws.send(msg);
    const [name, ...rest] = msg.slice(4).split(':');
    const arg = rest.join(':');
    if (name === 'frag') {
      sendFragments(ws, thirds(bytesOf(Number(arg))), true);
      sendFragments(ws, thirds(cfg.frag_text), false);
    } else if (name === 'big') {
      ws.send(bytesOf(Number(arg)), { binary: true });
    } else if (name === 'ping') {
      ws.ping(Buffer.from('server-ping'));
      awaitingCheck = true;
      ws.send('ping-sent');
    } else if (name === 'close') {
      ws.close(Number(rest[0]), rest.slice(1).join(':'));
    } else {
      ws.send(`unknown command ${msg}`);
    }
  });
});

web.listen(0, '127.0.0.1', () => console.log(`PORT ${web.address().port}`));
