import { test, expect, type Page } from '@playwright/test';

/**
 * The release binary, deployed as one file (scripts/e2e_release.sh copies
 * it alone into an empty directory and starts it): a room page hydrates
 * and goes live with the scripts embedded in the binary, and a second visit
 * takes the hashed files from the browser's cache without asking the
 * server again. The binary is built with `--split`: the lazy routes (the
 * lobby, the account pages) are chunks of their own, which a room page
 * never fetches.
 */

/** Waits for the link status to say `live` (only the hydrated client sets it). */
async function live(page: Page) {
  await expect(page.getByTestId('link-status')).toHaveAttribute('data-status', 'live');
}

/** Bytes each /pkg/ file took on the wire for this document (0: from the cache). */
async function pkgTransfers(page: Page): Promise<Record<string, number>> {
  return page.evaluate(() =>
    Object.fromEntries(
      performance
        .getEntriesByType('resource')
        .map((e) => e as PerformanceResourceTiming)
        .filter((e) => new URL(e.name).pathname.startsWith('/pkg/'))
        .map((e) => [new URL(e.name).pathname.replace(/\.[^.]+\.(\w+)$/, '.$1'), e.transferSize]),
    ),
  );
}

test('the release binary hydrates from its own files, cached on the next visit', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const wasm = page.waitForResponse((r) => r.url().endsWith('.wasm'));
  await page.goto('/rooms/1');
  const res = await wasm;
  expect(res.status()).toBe(200);
  expect(res.url()).toMatch(/\/pkg\/tandem\.[\w-]{22}\.wasm$/);
  expect(await res.headerValue('cache-control')).toBe('max-age=31536000, immutable');
  // Chromium offers brotli to secure origins, loopback among them: the
  // brotli made at build time.
  expect(await res.headerValue('content-encoding')).toBe('br');
  await live(page);
  const first = await pkgTransfers(page);
  for (const file of ['/pkg/tandem.js', '/pkg/tandem.wasm', '/pkg/tandem.css']) {
    expect(first[file], `${file} fetched on the first visit`).toBeGreaterThan(0);
  }

  // A repeat visit: new navigations, not a reload (which revalidates).
  await page.goto('/');
  await page.goto('/rooms/1');
  await live(page);
  const repeat = await pkgTransfers(page);
  expect(repeat).toEqual({
    '/pkg/tandem.js': 0,
    '/pkg/tandem.wasm': 0,
    '/pkg/tandem.css': 0,
    '/pkg/__wasm_split.js': 0,
  });
  expect(errors).toEqual([]);
});

/** The paths of the .wasm files `page` requests from now on. */
function wasmRequests(page: Page): string[] {
  const seen: string[] = [];
  page.on('request', (r) => {
    if (r.url().endsWith('.wasm')) seen.push(new URL(r.url()).pathname);
  });
  return seen;
}

test('a room page loads none of the lazy routes; the lobby and the sign-up page fetch their own chunks', async ({
  browser,
}) => {
  // Each visit in a new context: an empty cache, so every file is asked for.
  const room = await (await browser.newContext()).newPage();
  const errors: string[] = [];
  room.on('pageerror', (e) => errors.push(e.message));
  const roomWasm = wasmRequests(room);
  await room.goto('/rooms/1');
  await live(room);
  expect(roomWasm).toEqual([expect.stringMatching(/^\/pkg\/tandem\.[\w-]{22}\.wasm$/)]);

  // The lobby is a lazy route: its page names its chunks in preload links,
  // and the browser fetches each once, beside the main wasm.
  const lobby = await (await browser.newContext()).newPage();
  lobby.on('pageerror', (e) => errors.push(e.message));
  const lobbyWasm = wasmRequests(lobby);
  await lobby.goto('/');
  await live(lobby);
  await expect(lobby.getByTestId('room-list')).toBeVisible();
  const preloaded = await lobby
    .locator('link[rel=preload][href$=".wasm"]')
    .evaluateAll((links) => links.map((l) => new URL((l as HTMLLinkElement).href).pathname));
  expect(preloaded.some((p) => p.includes('home_page'))).toBe(true);
  expect([...lobbyWasm].sort()).toEqual([...preloaded].sort());

  // A page opened in the app loads its chunks then, and the router draws it.
  lobbyWasm.length = 0;
  await lobby.getByTestId('sign-up-link').click();
  await expect(lobby).toHaveURL(/\/signup$/);
  await expect(lobby.getByTestId('credentials-form')).toBeVisible();
  expect(lobbyWasm.some((p) => p.includes('signup_page'))).toBe(true);
  expect(errors).toEqual([]);
});

test('a private room page hydrates from a fresh load, its members panel too', async ({ browser }) => {
  const owner = await browser.newContext();
  const page = await owner.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto('/signup');
  await page.getByTestId('account-name').fill(`own${Date.now()}`.slice(0, 32));
  await page.getByTestId('account-password').fill('a long enough password');
  await page.getByTestId('account-submit').click();
  await expect(page.getByTestId('display-name')).toBeVisible();
  await live(page);
  await page.getByTestId('room-name').fill(`members ${Date.now()}`);
  await page.getByTestId('room-private').check();
  await page.getByRole('button', { name: 'Create room' }).click();
  await expect(page).toHaveURL(/\/rooms\/\d+$/);
  const url = page.url();

  // A first visit of the room (same account, empty cache): only the main
  // wasm, and the members panel hydrated with the page.
  const visit = await (await browser.newContext({ storageState: await owner.storageState() })).newPage();
  visit.on('pageerror', (e) => errors.push(e.message));
  const fetched = wasmRequests(visit);
  await visit.goto(url);
  await live(visit);
  await expect(visit.getByTestId('member')).toHaveCount(1);
  expect(fetched).toEqual([expect.stringMatching(/^\/pkg\/tandem\.[\w-]{22}\.wasm$/)]);
  await visit.getByTestId('invite-name').fill('nobody-at-all');
  await visit.getByTestId('invite').click();
  await expect(visit.getByTestId('members').getByRole('alert')).toHaveText('account “nobody-at-all” not found');
  await expect(visit).toHaveURL(url);
  expect(errors).toEqual([]);
});
