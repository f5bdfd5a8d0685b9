// One step of the ring over TCP, without the ring: two processes pinned to CPUs 0 and 1, each
// with the project's PolledTcpLink over two loopback connections (to the other and from it),
// exchange N bytes each way 30 times, copying or adding (MODE=copy, MODE=add; both by default),
// sending from SEND_OFFSET and receiving at OFFSET bytes (multiples of 4, default 0) past the
// start of a page, as a gradient bucket's chunks in a shared mapping lie.
// Prints the medians, to hold against bench/reference/socket_exchange.py (bare TCP, the same bytes).
//
//   npm run build && node bench/reference/link_exchange.cjs 8388608
'use strict';
const net = require('node:net');
const path = require('node:path');
const { execFileSync, fork } = require('node:child_process');
const { PolledTcpLink } = require(path.join(__dirname, '..', '..', 'dist', 'lib', 'ddp', 'polled-tcp-link.js'));

const bytes = Number(process.argv[2]);
if (!(bytes > 0 && bytes % 4 === 0)) throw new Error('usage: node bench/reference/link_exchange.cjs BYTES (a positive multiple of 4)');
const modes = process.env.MODE === 'copy' ? [false] : process.env.MODE === 'add' ? [true] : [false, true];
const ROUNDS = 30;
const offset = Number(process.env.OFFSET ?? 0);
const sendOffset = Number(process.env.SEND_OFFSET ?? 0);
if (![offset, sendOffset].every((o) => o >= 0 && o % 4 === 0)) throw new Error('OFFSET and SEND_OFFSET must be multiples of 4 bytes');

const pin = (cpu) => execFileSync('taskset', ['-pc', String(cpu), String(process.pid)], { stdio: 'ignore' });
const median = (a) => (a.length ? a.sort((x, y) => x - y)[a.length >> 1].toFixed(2) : '-');

/** Both links exist before any byte moves (`linked`), so that Node reads none of them. */
async function exchanges(next, prev, linked) {
  prev.pause();
  prev._handle.readStop();
  const link = new PolledTcpLink(next, prev, [], 'the other process', 'the other process');
  await linked();
  // A WebAssembly memory is its own mapping, so its first byte starts a page (an ArrayBuffer's
  // comes from malloc, past its header).
  const pageAligned = (at) => new Float32Array(new WebAssembly.Memory({ initial: Math.ceil((bytes + at) / 65536) }).buffer, at, bytes / 4).fill(1);
  const out = pageAligned(sendOffset);
  const into = pageAligned(offset);
  const ms = { copy: [], add: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const reduce = modes[r % modes.length];
    const t = performance.now();
    await link.exchange(out, into, reduce);
    ms[reduce ? 'add' : 'copy'].push(performance.now() - t);
  }
  return ms;
}

const connectTo = (port) => new Promise((ok) => { const s = net.connect({ port, host: '127.0.0.1', noDelay: true }, () => ok(s)); });
/** A server on a free port, and the first connection it accepts. */
function accepting() {
  let accepted;
  const first = new Promise((ok) => { accepted = ok; });
  const server = net.createServer({ noDelay: true }, (s) => accepted(s));
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ port: server.address().port, first })));
}
const message = (from) => new Promise((ok) => from.once('message', ok));

async function parent() {
  pin(0);
  const child = fork(__filename, process.argv.slice(2), { env: { ...process.env, LINK_EXCHANGE_CHILD: '1' } });
  const childPort = message(child);
  const { port, first } = await accepting();
  child.send(port);
  const next = await connectTo(await childPort);
  const prev = await first;
  const ms = await exchanges(next, prev, async () => { await message(child); child.send('go'); });
  console.log(`${bytes} bytes each way, sent from offset ${sendOffset}, received at offset ${offset}, median of ${ROUNDS / modes.length}: copy ${median(ms.copy)} ms, add ${median(ms.add)} ms`);
  child.kill();
  process.exit(0);
}

async function childProcess() {
  pin(1);
  const parentPort = await message(process);
  const { port, first } = await accepting();
  const next = await connectTo(parentPort);
  process.send(port);
  const prev = await first;
  await exchanges(next, prev, async () => { const go = message(process); process.send('linked'); await go; });
}

(process.env.LINK_EXCHANGE_CHILD ? childProcess : parent)().catch((e) => { console.error(e); process.exit(1); });
