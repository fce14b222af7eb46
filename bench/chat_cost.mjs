// Per-message cost of the chat page in Chromium (run by bench/chat_cost.sh
// against a release build). For rooms with 50 and with 2,000 messages on
// screen it times, per incoming message, from the WebSocket `message` event
// that carries it to the moment its row is in the DOM ("apply"), and to
// the end of the layout that follows ("apply + layout"). Then it sends
// 10,000 messages to a reader that follows the end of an empty room and
// reads the tab's memory (also at 1,000, 5,000 and 20,000: the trend): JS heap (after a GC), DOM nodes, and the
// WebAssembly linear memory (which never shrinks: its peak).
//   node bench/chat_cost.mjs BASE_URL OUT.json [SAMPLES]
// While trying changes: SKIP_MEMORY=1 skips the memory part, MEMORY_ONLY=1
// the timings, and EXTRA_CSS='…' adds a style sheet to every page.
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import * as http from '../scripts/tandem_http.mjs';
import { writeFileSync } from 'node:fs';

const require = createRequire(new URL('../end2end/package.json', import.meta.url));
const { chromium } = require('@playwright/test');

const [base, outFile, samplesArg] = process.argv.slice(2);
const SAMPLES = Number(samplesArg ?? 40);
const PASSWORD = 'chat-cost-password';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const session = (name) => http.session(base, name, PASSWORD);
const call = (cookie, fn, form) => http.call(base, cookie, fn, form);

const send = (cookie, room, body) =>
  call(cookie, 'send_message', { room_id: String(room), client_id: randomUUID(), body });

/** Posts `n` messages to `room`, 8 at a time. */
async function fill(cookie, room, n, prefix) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await send(cookie, room, `${prefix} ${i} — some words to make a realistic line of chat text`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

// In the page, before its scripts: timestamps at the socket and at the DOM.
const probe = () => {
  const p = (window.__probe = {
    marker: null,
    t0: 0,
    arm(m) {
      this.marker = m;
      this.t0 = 0;
      this.done = new Promise((r) => (this.resolve = r));
    },
  });
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        if (p.marker && typeof e.data === 'string' && e.data.includes(p.marker)) p.t0 = performance.now();
      });
    }
  };
  new MutationObserver((records) => {
    if (!p.marker || !p.t0) return;
    for (const r of records)
      for (const n of r.addedNodes)
        if (n.nodeType === 1 && n.textContent.includes(p.marker)) {
          const applied = performance.now();
          void document.body.offsetHeight; // the layout the new row causes
          const laid = performance.now();
          p.marker = null;
          p.resolve({ apply: applied - p.t0, layout: laid - p.t0 });
          return;
        }
  }).observe(document, { subtree: true, childList: true });
  const grab = (r) => {
    window.__wasm = r.instance ?? r;
    return r;
  };
  const stream = WebAssembly.instantiateStreaming;
  WebAssembly.instantiateStreaming = (...a) => stream(...a).then(grab);
  const inst = WebAssembly.instantiate;
  WebAssembly.instantiate = (...a) => inst(...a).then(grab);
};

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (f) => s[Math.min(s.length - 1, Math.floor(f * s.length))];
  const r = (x) => Math.round(x * 1000) / 1000;
  return { n: s.length, min: r(s[0]), p50: r(q(0.5)), p95: r(q(0.95)), max: r(s[s.length - 1]) };
}

async function openRoom(browser, cookie, room) {
  const context = await browser.newContext({ baseURL: base });
  await context.addCookies([{ name: 'tandem_session', value: cookie, url: base }]);
  await context.addInitScript(probe);
  if (process.env.EXTRA_CSS)
    await context.addInitScript((css) => {
      document.addEventListener('DOMContentLoaded', () => {
        const st = document.createElement('style');
        st.textContent = css;
        document.head.append(st);
      });
    }, process.env.EXTRA_CSS);
  const page = await context.newPage();
  await page.goto(`/rooms/${room}`);
  await page.waitForSelector('[data-testid="link-status"][data-status="live"]', { timeout: 60_000 });
  return { context, page };
}

const result = { when: new Date().toISOString(), samples: SAMPLES, sizes: {} };
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const writer = await session('cost-writer');
const reader = await session('cost-reader');

for (const size of process.env.MEMORY_ONLY ? [] : [50, 2000]) {
  const room = await call(writer, 'create_room', { name: `cost ${size} ${randomUUID().slice(0, 8)}` });
  await fill(writer, room.id, size, `m`);
  const { context, page } = await openRoom(browser, reader, room.id);
  const rows = page.locator('[data-testid="message"]');
  if ((await rows.count()) !== size) throw new Error(`expected ${size} rows, got ${await rows.count()}`);
  // Scrolled up a little, as a reader of history is: nothing is trimmed.
  await page.getByTestId('messages').evaluate((el) => (el.scrollTop = -200));
  const apply = [];
  const layout = [];
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  const metrics = async () =>
    Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((x) => [x.name, x.value]));
  const engine = { style_ms: [], layout_ms: [], script_ms: [] };
  for (let i = 0; i < SAMPLES + 5; i++) {
    const marker = `probe-${i}-${randomUUID()}`;
    await page.evaluate((m) => window.__probe.arm(m), marker);
    const before = await metrics();
    await send(writer, room.id, marker);
    const t = await page.evaluate(() => window.__probe.done);
    const after = await metrics();
    if (i >= 5) {
      // The first few warm the JIT and caches up.
      apply.push(t.apply);
      layout.push(t.layout);
      // Chromium's own accounts of the same interval (they include
      // whatever else the page did meanwhile).
      engine.style_ms.push((after.RecalcStyleDuration - before.RecalcStyleDuration) * 1000);
      engine.layout_ms.push((after.LayoutDuration - before.LayoutDuration) * 1000);
      engine.script_ms.push((after.ScriptDuration - before.ScriptDuration) * 1000);
    }
    await sleep(30);
  }
  const onScreen = await rows.count();
  const breakdown = Object.fromEntries(Object.entries(engine).map(([k, v]) => [k, stats(v)]));
  result.sizes[size] = { on_screen: onScreen, apply_ms: stats(apply), apply_and_layout_ms: stats(layout), chromium: breakdown };
  console.log(`${size} on screen (${onScreen} at the end): apply`, stats(apply), 'apply+layout', stats(layout), breakdown);
  await context.close();
}

// Memory while following the end of a room that receives 10,000 messages.
if (!process.env.SKIP_MEMORY) {
  const room = await call(writer, 'create_room', { name: `cost memory ${randomUUID().slice(0, 8)}` });
  const { context, page } = await openRoom(browser, reader, room.id);
  // MEMORY_PAGE=/ : follow from the room list instead (the live client's
  // share alone, no rows).
  if (process.env.MEMORY_PAGE) {
    await page.goto(process.env.MEMORY_PAGE);
    await page.waitForSelector('[data-testid="link-status"][data-status="live"]', { timeout: 60_000 });
  }
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  const sample = async (received) => {
    await cdp.send('HeapProfiler.collectGarbage');
    const { metrics } = await cdp.send('Performance.getMetrics');
    const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
    const wasm = await page.evaluate(() => window.__wasm?.exports?.memory?.buffer?.byteLength ?? null);
    const rows = await page.locator('[data-testid="message"]').count();
    return { received, rows, js_heap_used_bytes: m.JSHeapUsedSize, dom_nodes: m.Nodes, wasm_memory_bytes: wasm };
  };
  const memory = [await sample(0)];
  let sent = 0;
  for (const upTo of process.env.MEMORY_ONLY ? [1000, 5000] : [1000, 5000, 10000, 20000]) {
    await fill(writer, room.id, upTo - sent, `flood ${upTo}`);
    sent = upTo;
    if (!process.env.MEMORY_PAGE) await page.waitForFunction(
      (n) => {
        const rows = document.querySelectorAll('[data-testid="message"]');
        const last = rows[rows.length - 1];
        return last && Number(last.getAttribute('data-seq')) >= n;
      },
      sent,
      { timeout: 300_000 },
    );
    await sleep(1500);
    memory.push(await sample(sent));
  }
  result.memory = memory;
  console.log('memory', memory);
  await context.close();
}
await browser.close();
writeFileSync(outFile, JSON.stringify(result, null, 2));
