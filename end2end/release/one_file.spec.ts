import { test, expect, type Page } from '@playwright/test';

/**
 * The release binary, deployed as one file (scripts/e2e_release.sh copies
 * it alone into an empty directory and starts it): a room page hydrates
 * and goes live with the scripts embedded in the binary, and a second visit
 * takes the hashed files from the browser's cache without asking the
 * server again.
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
  expect(repeat).toEqual({ '/pkg/tandem.js': 0, '/pkg/tandem.wasm': 0, '/pkg/tandem.css': 0 });
  expect(errors).toEqual([]);
});
