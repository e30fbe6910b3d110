// Shared by the Node `ws` interop peers: the language of tests/interop/mp/scenarios.py.
// The constants come from the Python side as JSON (argv), so they are defined once.
'use strict';

const ALPHA = '0123456789abcdefghijklmnopqrstuvwxyz';

function textOf(n) {
  return ALPHA.repeat(Math.floor(n / ALPHA.length) + 1).slice(0, n);
}

function bytesOf(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = i & 255;
  return b;
}

function thirds(data) {
  const a = Math.floor(data.length / 3);
  return [data.slice(0, a), data.slice(a, 2 * a), data.slice(2 * a)];
}

// Send `parts` as one fragmented message (a frame per part).
function sendFragments(ws, parts, binary) {
  parts.forEach((p, i) => ws.send(p, { binary, fin: i === parts.length - 1 }));
}

function parseArgs(argv) {
  const opts = {};
  for (const a of argv) {
    const i = a.indexOf('=');
    opts[a.slice(0, i)] = a.slice(i + 1);
  }
  return opts;
}

module.exports = { textOf, bytesOf, thirds, sendFragments, parseArgs };
