/**
 * Accessibility, checked with axe-core (WCAG 2.0/2.1 A and AA rules:
 * contrast of text 4.5:1, labels, landmarks and headings, ARIA) on every
 * page, signed in and anonymous, with content on screen; and the live
 * regions: the message list is a `role=log` live region and the connection
 * badge a `role=status`.
 */
import AxeBuilder from '@axe-core/playwright';
import type { Page } from '@playwright/test';
import { createRoom, expect, sendOverHttp, test, uid } from './fixtures/chat';

async function violations(page: Page): Promise<string[]> {
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  return result.violations.map(
    (v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
  );
}

test('every page passes the axe-core WCAG A/AA checks', async ({ newUser, request }) => {
  const room = await createRoom(request);
  await sendOverHttp(request, room.id, 'bob', `a message to read ${uid()}`);
  const member = await newUser('alice');
  const anon = await newUser(null);
  const pages: [string, Page, string][] = [
    ['home, signed in', member.page, '/'],
    ['room, signed in', member.page, `/rooms/${room.id}`],
    ['account', member.page, '/account'],
    ['home, anonymous', anon.page, '/'],
    ['room, anonymous', anon.page, `/rooms/${room.id}`],
    ['log in', anon.page, '/login'],
    ['sign up', anon.page, '/signup'],
    ['a missing room', anon.page, '/rooms/999999'],
    ['no such page', anon.page, '/nowhere'],
  ];
  const found: string[] = [];
  for (const [what, page, path] of pages) {
    await page.goto(path);
    await expect(page.locator('h1')).toHaveCount(1);
    for (const v of await violations(page)) found.push(`${what}: ${v}`);
  }
  console.log(`AXE_VIOLATIONS=${found.length}`);
  expect(found, 'axe-core violations').toEqual([]);
});

test('messages are a live log, the link badge a status, and titles say where the user is', async ({
  newUser,
  request,
}) => {
  const room = await createRoom(request);
  const alice = await newUser('alice');
  await alice.open(room.id);
  await expect(alice.page.locator('[role="log"][aria-live="polite"]')).toHaveCount(1);
  await expect(alice.status).toHaveAttribute('role', 'status');
  // (An unread count from alice's other rooms may come first: "(3) …".)
  await expect(alice.page).toHaveTitle(new RegExp(`^(\\(\\d+\\+?\\) )?${room.name} · tandem$`));
  await alice.page.goto('/rooms/999999');
  await expect(alice.page).toHaveTitle(/^(\(\d+\+?\) )?Room not found · tandem$/);
  const missing = await alice.page.goto('/nowhere');
  expect(missing?.status()).toBe(404);
  await expect(alice.page).toHaveTitle(/^(\(\d+\+?\) )?Page not found · tandem$/);
});
