// Where a page's hydration time goes, from Chromium's own trace: for a
// first visit (new browser context) and a repeat visit of PATH, the time on
// the page's main thread between the marks `tandem:wasm-ready` (the boot
// script's) and `tandem:hydrated` (the wasm's, once hydrated), and how much of it V8 spent compiling wasm
// functions on their first call (`wasm.CompileLazy` trace events: V8
// compiles a wasm function only when it is first called, on the calling
// thread; a repeat visit gets compiled code from Chromium's code cache).
// Start the release binary first (as bench/first_load.sh does), then:
//   node bench/hydrate_trace.mjs BASE_URL PATH OUT.json [RUNS]
// Tracing slows the page; read the figures against each other, not against
// bench/first_load.mjs's.
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(new URL('../end2end/package.json', import.meta.url));
const { chromium } = require('@playwright/test');

const [base, path, outFile, runsArg] = process.argv.slice(2);
const RUNS = Number(runsArg ?? 6);
const dir = mkdtempSync(join(tmpdir(), 'hydrate-trace-'));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

/** One traced navigation in `page`. */
async function visit(page, file) {
  await browser.startTracing(page, { path: file, categories: ['devtools.timeline', 'v8', 'v8.wasm', 'blink.user_timing'] });
  await page.goto(base + path, { waitUntil: 'load' });
  await page.waitForFunction(() => performance.getEntriesByName('tandem:hydrated').length > 0, null, { timeout: 20000 });
  await browser.stopTracing();
  const trace = JSON.parse(readFileSync(file, 'utf8'));
  const events = trace.traceEvents ?? trace;
  const last = (name) => events.filter((e) => e.name === name).pop();
  const ready = last('tandem:wasm-ready');
  const hydrated = last('tandem:hydrated');
  const onMain = events.filter(
    (e) => e.ph === 'X' && e.pid === ready.pid && e.tid === ready.tid && e.ts >= ready.ts && e.ts + (e.dur ?? 0) <= hydrated.ts,
  );
  const lazy = onMain.filter((e) => e.name === 'wasm.CompileLazy');
  return {
    hydrate_ms: (hydrated.ts - ready.ts) / 1000,
    compile_lazy_ms: lazy.reduce((sum, e) => sum + e.dur, 0) / 1000,
    functions_compiled: lazy.length,
  };
}

const runs = [];
try {
  for (let i = 0; i < RUNS; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const first = await visit(page, join(dir, `first-${i}.json`));
    const repeat = await visit(page, join(dir, `repeat-${i}.json`));
    await context.close();
    runs.push({ first, repeat });
    console.error(
      `run ${i + 1}: first ${first.hydrate_ms.toFixed(1)} ms (${first.compile_lazy_ms.toFixed(1)} compiling ` +
        `${first.functions_compiled} functions), repeat ${repeat.hydrate_ms.toFixed(1)} ms`,
    );
  }
} finally {
  await browser.close();
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = {};
for (const which of ['first', 'repeat']) {
  summary[which] = {};
  for (const key of ['hydrate_ms', 'compile_lazy_ms', 'functions_compiled']) {
    const xs = runs.map((r) => r[which][key]);
    summary[which][key] = { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
  }
}
writeFileSync(outFile, JSON.stringify({ base, path, runs: RUNS, summary, detail: runs }, null, 1));
console.log(JSON.stringify(summary));
