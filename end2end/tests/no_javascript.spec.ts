/**
 * Without JavaScript the app is still readable: a room's recent messages and
 * the home page's room list are in the server-rendered HTML, and the plain
 * forms (sign up, log out, log in, create a room) post without scripts.
 *
 * Each test first checks that the raw HTML response contains the text, then
 * that a browser with JavaScript disabled actually shows it. If only the
 * second check fails, the content was streamed out of order (inside
 * `<template>` chunks that only a script moves into place), which a
 * script-less browser never displays.
 */
import type { Locator, Page } from '@playwright/test';
import { createRoom, expect, passwordFor, sendOverHttp, test, uid, uniqueName } from './fixtures/chat';

const OUT_OF_ORDER_HINT =
  'is in the server HTML but not displayed without JavaScript (out-of-order streaming puts ' +
  'Suspense content in <template> chunks that need a script; use SsrMode::InOrder/Async)';

test('a room page shows its messages without JavaScript', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const tag = uid();
  const bodies = [`no-js one ${tag}`, `no-js two ${tag}`, `no-js three ${tag}`];
  for (const body of bodies) await sendOverHttp(request, room.id, 'dave', body);

  const html = await (await request.get(`/rooms/${room.id}`, { headers: { Accept: 'text/html' } })).text();
  for (const body of bodies) expect(html, 'the messages are in the server-rendered HTML').toContain(body);

  const reader = await newUser('erin', { javaScriptEnabled: false });
  const response = await reader.page.goto(`/rooms/${room.id}`);
  expect(response?.status()).toBe(200);

  await expect(reader.bodies, `the room's messages ${OUT_OF_ORDER_HINT}`).toHaveText(bodies);
  await expect(reader.page.locator('h1.room-name')).toHaveText(room.name);
  await expect(reader.message(bodies[0]).locator('.author')).toHaveText('dave');
  // Nothing ran in the page: the live link never started.
  await expect(reader.status).toHaveAttribute('data-status', 'connecting');
});

test('the home page lists rooms without JavaScript', async ({ newUser, request }) => {
  const room = await createRoom(request);

  const html = await (await request.get('/', { headers: { Accept: 'text/html' } })).text();
  expect(html, 'the room list is in the server-rendered HTML').toContain(room.name);

  const visitor = await newUser(null, { javaScriptEnabled: false });
  const response = await visitor.page.goto('/');
  expect(response?.status()).toBe(200);

  const link = visitor.page.getByTestId('room-list').getByRole('link', { name: room.name, exact: true });
  await expect(link, `the room list ${OUT_OF_ORDER_HINT}`).toBeVisible();
  await expect(link).toHaveAttribute('href', `/rooms/${room.id}`);
});

/** Clicks a submit button and waits until the browser has shown the next document. */
async function submitAndWaitForNavigation(page: Page, button: Locator): Promise<void> {
  const navigated = page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame() });
  await button.click();
  await navigated;
  await page.waitForLoadState('domcontentloaded');
}

/** The page is back on the home page (the server function redirected), not on /api/... */
const HOME_URL = /^https?:\/\/[^/]+\/(\?.*)?$/;

test('a room can be created with the plain form, without JavaScript', async ({ newUser, request }) => {
  const name = uniqueName('e2e-nojs');
  const visitor = await newUser('nojs-owner', { javaScriptEnabled: false });
  await visitor.page.goto('/');

  await visitor.page.getByTestId('room-name').fill(name);
  await submitAndWaitForNavigation(visitor.page, visitor.page.getByRole('button', { name: 'Create room' }));
  await expect(visitor.page, 'the form post redirects to the new room').toHaveURL(/\/rooms\/\d+$/);
  await expect(visitor.page.locator('h1.room-name')).toHaveText(name);

  // The room list comes in pages: read them all.
  type RoomList = { rooms: { room: { id: number; name: string } }[]; next: number | null };
  const names: string[] = [];
  let after: number | null = null;
  do {
    const query: string = after === null ? '' : `?after=${after}`;
    const page = (await (await request.get(`/api/list_rooms${query}`)).json()) as RoomList;
    names.push(...page.rooms.map((r) => r.room.name));
    after = page.next;
  } while (after !== null);
  expect(names, 'the room created by the form exists').toContain(name);
});

test('signing up, logging out and logging in work with plain forms, without JavaScript', async ({ newUser }) => {
  const name = uniqueName('frank').slice(0, 32);
  const visitor = await newUser(null, { javaScriptEnabled: false });
  const { page } = visitor;
  await page.goto('/signup');
  await expect(page.getByTestId('account-name'), `the sign-up form ${OUT_OF_ORDER_HINT}`).toBeVisible();
  await page.getByTestId('account-name').fill(name);
  await page.getByTestId('account-password').fill(passwordFor(name));
  await submitAndWaitForNavigation(page, page.getByTestId('account-submit'));
  await expect(page, 'signing up lands on the home page').toHaveURL(HOME_URL);
  await expect(visitor.displayName).toHaveText(name);
  const cookie = (await visitor.context.cookies()).find((c) => c.name === 'tandem_session');
  expect(cookie?.httpOnly, 'the session cookie is HttpOnly').toBe(true);
  expect(cookie?.sameSite).toBe('Lax');

  await submitAndWaitForNavigation(page, page.getByTestId('log-out'));
  await expect(page).toHaveURL(HOME_URL);
  await expect(visitor.displayName).toHaveCount(0);
  await expect(page.getByTestId('log-in-link')).toBeVisible();

  // A wrong password comes back to the form with a message.
  await page.goto('/login');
  await page.getByTestId('account-name').fill(name);
  await page.getByTestId('account-password').fill('not the right password');
  await submitAndWaitForNavigation(page, page.getByTestId('account-submit'));
  await expect(page).toHaveURL(/\/login\?error=wrong$/);
  await expect(page.getByTestId('account-error')).toHaveText('Wrong name or password.');

  await page.getByTestId('account-name').fill(name);
  await page.getByTestId('account-password').fill(passwordFor(name));
  await submitAndWaitForNavigation(page, page.getByTestId('account-submit'));
  await expect(page).toHaveURL(HOME_URL);
  await expect(visitor.displayName).toHaveText(name);
});
