// A first visit and a repeat visit of a room page in Chromium, against the
// release binary (run by bench/first_load.sh). Per visit: the bytes sent
// over the wire (headers and bodies, as compressed, by the resource's kind:
// HTML, JS, wasm, CSS, other), each response's Content-Encoding, and the
// time from the navigation's start to the moment the link status says
// `live` (hydrated, WebSocket open, room subscribed), taken in the page by
// a MutationObserver installed before any of its scripts.
// Each first visit is a new browser context (an empty cache); its repeat
// visit is a second navigation in that context.
//   node bench/first_load.mjs BASE_URL PATH OUT.json [RUNS]
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';

const require = createRequire(new URL('../end2end/package.json', import.meta.url));
const { chromium } = require('@playwright/test');

const [base, path, outFile, runsArg] = process.argv.slice(2);
const RUNS = Number(runsArg ?? 5);

// In the page, before its scripts: the moment the link status turns live.
const probe = () => {
  window.__live = null;
  const seen = () => {
    const el = document.querySelector('[data-testid="link-status"]');
    if (window.__live === null && el && el.getAttribute('data-status') === 'live') {
      window.__live = performance.now();
    }
  };
  // The page's WebSocket: made, open, and its first frame (the server's
  // `hello`), as marks beside the page's own.
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      performance.mark('socket-made');
      this.addEventListener('open', () => performance.mark('socket-open'), { once: true });
      this.addEventListener('message', () => performance.mark('socket-hello'), { once: true });
    }
  };
  new MutationObserver(seen).observe(document, {
    subtree: true,
    childList: true,
    attributes: true,
    attributeFilter: ['data-status'],
  });
};

function kindOf(url, type) {
  const p = new URL(url).pathname;
  if (type === 'document') return 'html';
  if (p.endsWith('.wasm')) return 'wasm';
  if (p.endsWith('.js')) return 'js';
  if (p.endsWith('.css')) return 'css';
  return 'other';
}

/** One navigation in `page`: bytes by kind, encodings, time to live. */
async function visit(page) {
  const encodings = {};
  const onResponse = async (res) => {
    encodings[new URL(res.url()).pathname] = (await res.headerValue('content-encoding')) ?? 'identity';
  };
  page.on('response', onResponse);
  await page.goto(base + path, { waitUntil: 'load' });
  await page.waitForFunction(() => window.__live !== null, null, { timeout: 20000 });
  page.off('response', onResponse);
  // The browser's own account (Resource Timing): transferSize is what
  // crossed the wire, headers included, and 0 for a file from the cache.
  const { live, marks, entries } = await page.evaluate(() => ({
    live: window.__live,
    // The boot script's marks (release binary) and the wasm's arrival.
    marks: Object.fromEntries([
      ...performance.getEntriesByType('mark').map((m) => [m.name, m.startTime]),
      ...performance
        .getEntriesByType('resource')
        .filter((e) => e.name.endsWith('.wasm'))
        .map((e) => ['wasm-received', e.responseEnd]),
      ...performance.getEntriesByType('navigation').map((e) => ['html-received', e.responseEnd]),
    ]),
    entries: [
      ...performance.getEntriesByType('navigation'),
      ...performance.getEntriesByType('resource'),
    ].map((e) => ({
      name: e.name,
      type: e.entryType === 'navigation' ? 'document' : e.initiatorType,
      transfer: e.transferSize,
      encoded: e.encodedBodySize,
      decoded: e.decodedBodySize,
    })),
  }));
  const bytes = { html: 0, js: 0, wasm: 0, css: 0, other: 0 };
  const files = [];
  for (const e of entries) {
    if (!e.name.startsWith(base)) continue;
    const kind = kindOf(e.name, e.type);
    bytes[kind] += e.transfer;
    const p = new URL(e.name).pathname;
    files.push({ path: p, kind, encoding: encodings[p] ?? 'cache', transfer: e.transfer, encoded: e.encoded, decoded: e.decoded });
  }
  const total = Object.values(bytes).reduce((a, b) => a + b, 0);
  return { live_ms: live, marks, bytes, total, files };
}

// Over HTTPS the server's certificate is trusted by its key (SPKI=<base64
// sha256>), not by ignoring errors: Chromium does not cache anything from
// an origin whose certificate is in error, which would spoil repeat visits.
const trust = process.env.SPKI ? [`--ignore-certificate-errors-spki-list=${process.env.SPKI}`] : [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...trust],
});
const runs = [];
try {
  for (let i = 0; i < RUNS; i++) {
    const context = await browser.newContext();
    await context.addInitScript(probe);
    const page = await context.newPage();
    const first = await visit(page);
    const repeat = await visit(page);
    await context.close();
    runs.push({ first, repeat });
    console.error(
      `run ${i + 1}: first ${first.live_ms.toFixed(0)} ms ${first.total} B, ` +
        `repeat ${repeat.live_ms.toFixed(0)} ms ${repeat.total} B`,
    );
  }
} finally {
  await browser.close();
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const summary = {};
for (const which of ['first', 'repeat']) {
  const live = runs.map((r) => r[which].live_ms);
  summary[which] = {
    live_ms_median: median(live),
    live_ms_min: Math.min(...live),
    live_ms_max: Math.max(...live),
    bytes_median: median(runs.map((r) => r[which].total)),
    marks_median: Object.fromEntries(
      Object.keys(runs[0][which].marks).map((k) => [k, median(runs.map((r) => r[which].marks[k] ?? NaN))]),
    ),
  };
}
writeFileSync(outFile, JSON.stringify({ base, path, runs: RUNS, summary, detail: runs }, null, 1));
console.log(JSON.stringify(summary));
