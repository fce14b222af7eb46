/**
 * Closing what a hidden tab does not use. After the server's
 * `hidden_tab_ms` (4 s on the test server, see scripts/e2e.sh) a hidden tab
 * drops its room subscriptions (its account shows away in the rooms'
 * presence) and keeps only its account summary, so its title still counts
 * unread messages; with nothing left to watch it closes
 * its socket. Shown again, it resumes from the versions it had: nothing
 * missed, nothing twice, in order. A socket the server closes for watching
 * nothing (4002) waits, paused, until a topic needs it.
 */
import type { Page } from '@playwright/test';
import { createRoom, expect, expectStrictlyAscending, sendOverHttp, test, uid } from './fixtures/chat';
import { SocketControl } from './fixtures/socket';

/** Makes `page` look hidden (a background tab) or shown again. */
async function setHidden(page: Page, hidden: boolean): Promise<void> {
  await page.evaluate((h) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
    document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
  }, hidden);
}

const REST_TIMEOUT = 20_000;

test('a hidden tab keeps only its account summary, its title stays live, and shown again it misses nothing', async ({
  newUser,
  request,
}) => {
  const room = await createRoom(request);
  const topic = `room:${room.id}`;
  const aliceName = `alice-${uid()}`;
  const alice = await newUser(aliceName);
  const socket = await SocketControl.install(alice.context);
  await alice.open(room.id);
  const bob = await newUser('bob');
  await bob.open(room.id);
  await expect(bob.page.getByTestId('here')).toContainText('alice-');
  // Read on screen: from now on the account's summary counts this room.
  const marked = alice.page.waitForResponse((r) => r.url().includes('/api/mark_read') && r.ok());
  const first = `first ${uid()}`;
  await sendOverHttp(request, room.id, 'bob', first);
  await alice.expectMessage(first);
  await marked;

  await setHidden(alice.page, true);
  await test.step('after the delay it unsubscribes the room and its presence, not the summary', async () => {
    await expect
      .poll(() => socket.receivedOf('unsubscribed', topic).length, { timeout: REST_TIMEOUT })
      .toBe(1);
    expect(socket.sentOf('unsubscribe', `presence:${room.id}`)).toHaveLength(1);
    expect(socket.sent.filter((f) => f.type === 'unsubscribe' && String(f.topic).startsWith('user:'))).toHaveLength(0);
    expect(socket.closes, 'the summary keeps the socket open').toHaveLength(0);
    expect(socket.sentOf('unsubscribe', topic)[0].away, 'the room is left as away').toBe(true);
    await expect(bob.page.getByTestId('here'), 'alice shows away').toHaveText(`Here now: ${aliceName} (away), bob`);
  });

  const bodies = [1, 2, 3].map((i) => `while hidden ${i} ${uid()}`);
  await test.step('messages meanwhile: not delivered, but counted in the title', async () => {
    for (const body of bodies) await sendOverHttp(request, room.id, 'bob', body);
    await expect(alice.page).toHaveTitle(/^\(3\) /);
    expect(await alice.messageCount(bodies[0]), 'the room is not followed while hidden').toBe(0);
  });

  await test.step('shown again: resumed from its version, every message once and in order', async () => {
    await setHidden(alice.page, false);
    for (const body of bodies) await alice.expectMessage(body);
    expectStrictlyAscending(await alice.seqs());
    const resumed = socket.sentOf('subscribe', topic);
    expect(resumed.length).toBe(2);
    expect(resumed[1].since, 'resumed from the version it had').toBeTruthy();
    await expect(alice.page, 'read on screen: the count goes').not.toHaveTitle(/^\(/);
    await expect(bob.page.getByTestId('here'), 'alice is back').toHaveText(`Here now: ${aliceName}, bob`);
    expect(socket.opened, 'one socket throughout').toBe(1);
  });
  alice.expectNoPanic();
});

test('a hidden tab with nothing left to watch closes its socket, and reconnects when shown', async ({
  newUser,
  request,
}) => {
  const room = await createRoom(request);
  const visitor = await newUser(null);
  const socket = await SocketControl.install(visitor.context);
  await visitor.open(room.id);
  const before = `before ${uid()}`;
  await sendOverHttp(request, room.id, 'bob', before);
  await visitor.expectMessage(before);

  await setHidden(visitor.page, true);
  await expect.poll(() => socket.closes.length, { timeout: REST_TIMEOUT }).toBe(1);
  expect(socket.closes[0].code, 'a normal close').toBe(1000);
  await expect(visitor.status).toHaveAttribute('data-status', 'paused');

  const during = [1, 2].map((i) => `while closed ${i} ${uid()}`);
  for (const body of during) await sendOverHttp(request, room.id, 'bob', body);

  await setHidden(visitor.page, false);
  await visitor.waitLive();
  for (const body of [before, ...during]) await visitor.expectMessage(body);
  expectStrictlyAscending(await visitor.seqs());
  expect(socket.opened).toBe(2);
  const resumed = socket.sentOf('subscribe', `room:${room.id}`);
  expect(resumed[resumed.length - 1].since, 'resumed from the version it had').toBeTruthy();
  visitor.expectNoPanic();
});

test('a socket the server closes for watching nothing (4002) waits until a topic needs it', async ({ newUser }) => {
  const visitor = await newUser(null);
  const socket = await SocketControl.install(visitor.context);
  await visitor.page.goto('/login');
  await visitor.waitLive();
  // As the server does after `idle-close-ms` without a subscription.
  await socket.closeFromServer(4002, 'no subscriptions');
  await expect(visitor.status).toHaveAttribute('data-status', 'paused');
  // No reconnect on its own: there is nothing to watch.
  await visitor.page.waitForTimeout(2_000);
  expect(socket.opened).toBe(1);

  // The room list (reached in the page, no reload) follows the lobby: the
  // link comes back for it.
  await visitor.page.getByRole('link', { name: 'tandem', exact: true }).click();
  await visitor.waitLive();
  expect(socket.opened).toBe(2);
  await expect.poll(() => socket.receivedOf('subscribed', 'lobby:public').length).toBe(1);
  visitor.expectNoPanic();
});
