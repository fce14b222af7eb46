/**
 * Losing the socket: while alice's socket is down (held by the test through
 * `SocketControl`, so she provably cannot be live), bob keeps sending; once
 * the test releases it she shows every missed message exactly once, in
 * order, and her socket works again. The browser's `online` event and a tab
 * becoming visible reconnect at once (checked with a frozen clock, so no
 * backoff timer can do it instead). Also reports how long a fresh page takes
 * to go live (logged, not asserted).
 */
import type { Page } from '@playwright/test';
import { createRoom, expect, expectStrictlyAscending, sendOverHttp, test, uid } from './fixtures/chat';
import { SocketControl } from './fixtures/socket';

/**
 * Stops the page's clock: from here on no timer fires (`clock.install`
 * alone keeps time flowing, and then the backoff timer could reconnect
 * before the event under test, which made these tests pass without it and
 * the "retry now" click race the timer).
 */
async function freezeTimers(page: Page): Promise<void> {
  await page.clock.install();
  await page.clock.pauseAt((await page.evaluate(() => Date.now())) + 50);
}

test('a dropped socket catches up on missed messages exactly once, in order', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const alice = await newUser('alice');
  const bob = await newUser('bob');
  const socket = await SocketControl.install(alice.context);
  await Promise.all([alice.open(room.id), bob.open(room.id)]);

  const tag = uid();
  const before = `before the drop ${tag}`;
  await bob.sendAndConfirm(before);
  await alice.expectMessage(before);
  const applied = (await alice.seqs()).at(-1);

  await socket.drop();
  await alice.waitNotLive();

  const missed = [`missed one ${tag}`, `missed two ${tag}`, `missed three ${tag}`];
  const overHttp = `missed over http ${tag}`;
  await test.step('bob sends while alice cannot be live', async () => {
    // One at a time, each confirmed before the next, so their order is fixed.
    for (const body of missed) await bob.sendAndConfirm(body);
    await sendOverHttp(request, room.id, 'bob', overHttp);
    await expect(alice.status).not.toHaveAttribute('data-status', 'live');
    for (const body of [...missed, overHttp]) await expect(alice.message(body)).toHaveCount(0);
  });
  const expected = [before, ...missed, overHttp];

  await test.step('released: alice resumes and shows everything once, in order', async () => {
    socket.release();
    await alice.waitLive();
    for (const body of expected) await alice.expectMessage(body);
    await expect(alice.bodies).toHaveText(expected);
    await expect(alice.pending).toHaveCount(0);
    expectStrictlyAscending(await alice.seqs(), '[alice] data-seq');
    const resume = socket.sentOf('subscribe', `room:${room.id}`).at(-1) as { since?: { seq: number } };
    expect(resume?.since?.seq, 'the resubscription resumes from the last applied seq').toBe(applied);
  });

  await test.step("alice's socket works again", async () => {
    const after = `back online ${tag}`;
    await alice.sendAndConfirm(after, { viaSocket: true });
    await bob.expectMessage(after);
    const all = [...expected, after];
    for (const p of [alice, bob]) {
      await expect(p.bodies, `[${p.label}] every message once, in order`).toHaveText(all);
      await expect(p.pending).toHaveCount(0);
      p.expectNoPanic();
    }
    expect(await alice.seqs()).toEqual(await bob.seqs());
  });
});

for (const [what, wake] of [
  ['the browser coming back online', () => window.dispatchEvent(new Event('online'))],
  [
    'a hidden tab becoming visible',
    () => document.dispatchEvent(new Event('visibilitychange', { bubbles: true })),
  ],
] as const) {
  test(`${what} reconnects at once, without waiting out the backoff`, async ({ newUser, request }) => {
    const room = await createRoom(request);
    const carol = await newUser('carol');
    const socket = await SocketControl.install(carol.context);
    await carol.open(room.id);
    // From here on no timer fires: only the event can bring the link back.
    await freezeTimers(carol.page);
    await socket.drop();
    await carol.waitNotLive();
    socket.release();
    await carol.page.evaluate(wake);
    await carol.waitLive();
    carol.expectNoPanic();
  });
}

test('the "retry now" control reconnects at once, without waiting out the backoff', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const carol = await newUser('carol');
  const socket = await SocketControl.install(carol.context);
  await carol.open(room.id);
  // No timer fires: only the click can bring the link back.
  await freezeTimers(carol.page);
  await socket.drop();
  await carol.waitNotLive();
  socket.release();
  await carol.page.getByTestId('retry-now').click();
  await carol.waitLive();
  await expect(carol.page.getByTestId('retry-now')).toHaveCount(0);
  carol.expectNoPanic();
});

test('going offline shows offline; coming back online goes live', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const dan = await newUser('dan');
  await dan.open(room.id);
  await dan.context.setOffline(true);
  await expect(dan.status).toHaveAttribute('data-status', 'offline');
  await dan.context.setOffline(false);
  await dan.waitLive();
  dan.expectNoPanic();
});

test('a fresh page goes live (time is reported, not asserted)', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const carol = await newUser('carol');
  const start = Date.now();
  await carol.goto(room.id);
  await carol.waitLive();
  const ms = Date.now() - start;
  console.log(`TIME_TO_LIVE_MS=${ms}`);
  test.info().annotations.push({ type: 'TIME_TO_LIVE_MS', description: String(ms) });
});
