/**
 * The tab's outbox: a tab's messages are stored in the order they were
 * written, whatever the timing of their requests; a message written while
 * the link is down stays pending (it is not bounced back) and is sent once
 * when the link returns; a reload keeps pending messages; two tabs never
 * send each other's messages; a refusal is shown on the row and can be
 * discarded.
 */
import type { Route } from '@playwright/test';
import { ChatPage, createRoom, expect, expectStrictlyAscending, test, uid } from './fixtures/chat';

test('messages are stored in the order they were written, even when the first request is slow', async ({
  newUser,
  request,
}) => {
  const room = await createRoom(request);
  const alice = await newUser('alice');
  const viewer = await newUser('bob');
  await alice.open(room.id);
  await viewer.open(room.id);
  let first = true;
  await alice.page.route('**/api/send_message', async (route) => {
    if (first) {
      first = false;
      await new Promise((done) => setTimeout(done, 1_500));
    }
    await route.continue();
  });
  const tag = uid();
  const texts = [`wait, do NOT deploy yet ${tag}`, `ok ${tag}`, `really ok ${tag}`];
  for (const t of texts) await alice.send(t);
  for (const t of texts) await viewer.expectMessage(t);
  for (const p of [alice, viewer]) {
    const bodies = (await p.messageBodies()).filter((b) => b.endsWith(tag));
    expect(bodies, `[${p.label}] in the order written`).toEqual(texts);
    expectStrictlyAscending(await p.seqs());
  }
  alice.expectNoPanic();
});

test('a message written offline stays pending and is sent once when the link returns', async ({
  newUser,
  request,
}) => {
  const room = await createRoom(request);
  const alice = await newUser('alice');
  const viewer = await newUser('bob');
  await alice.open(room.id);
  await viewer.open(room.id);
  await alice.context.setOffline(true);
  const text = `written offline ${uid()}`;
  await alice.send(text);
  await expect(alice.pendingMessage(text), 'shown as pending, not bounced back').toHaveCount(1);
  await expect(alice.input).toHaveValue('');
  await alice.page.waitForTimeout(2_000);
  await expect(alice.pendingMessage(text), 'still pending after failed attempts').toHaveCount(1);
  await expect(alice.sendError).toHaveText('');
  await alice.context.setOffline(false);
  await alice.expectConfirmed(text, 20_000);
  await viewer.expectMessage(text);
  await alice.page.waitForTimeout(1_000);
  await expect(viewer.message(text), 'sent once').toHaveCount(1);
  alice.expectNoPanic();
});

test('a reload keeps pending messages, and they are sent once afterwards', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const alice = await newUser('alice');
  await alice.open(room.id);
  const refuse = (route: Route) => route.abort('connectionrefused');
  await alice.context.route('**/api/send_message', refuse);
  // The socket path is down too (so nothing can carry the message).
  await alice.context.setOffline(true);
  const text = `survives a reload ${uid()}`;
  await alice.send(text);
  await expect(alice.pendingMessage(text)).toHaveCount(1);
  await alice.context.setOffline(false);
  await alice.reload();
  await alice.waitLive();
  await expect(alice.pendingMessage(text), 'restored from the tab').toHaveCount(1);
  await alice.context.unroute('**/api/send_message', refuse);
  await alice.expectConfirmed(text, 20_000);
  await alice.reload();
  await alice.waitLive();
  await alice.expectMessage(text);
  alice.expectNoPanic();
});

test('two tabs of one browser never send each other’s pending messages', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const alice = await newUser('alice');
  await alice.open(room.id);
  const second = new ChatPage(await alice.context.newPage(), 'second tab');
  await second.open(room.id);
  let held: Route | null = null;
  await alice.page.route('**/api/send_message', (route) => {
    held = route;
  });
  const text = `from the first tab ${uid()}`;
  await alice.send(text);
  await expect.poll(() => held !== null, { message: 'the first tab sent it' }).toBe(true);
  await second.page.waitForTimeout(1_000);
  await expect(second.pending, 'the other tab has no pending row for it').toHaveCount(0);
  await (held as Route | null)?.continue();
  await alice.expectConfirmed(text);
  await second.expectMessage(text);
  await second.page.waitForTimeout(1_000);
  await expect(second.message(text), 'stored once').toHaveCount(1);
});

test('a refused message says why on its row and can be discarded', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const alice = await newUser('alice');
  await alice.open(room.id);
  await alice.page.route('**/api/send_message', (route) =>
    route.fulfill({
      status: 400,
      contentType: 'application/json',
      body: JSON.stringify({ code: 'validation', message: 'refused for this test' }),
    }),
  );
  const text = `refused ${uid()}`;
  await alice.send(text);
  const row = alice.pendingMessage(text);
  await expect(row).toHaveAttribute('data-state', 'refused');
  await expect(row).toContainText('not sent: refused for this test');
  await expect(alice.sendError).toHaveText('refused for this test');
  await row.getByTestId('cancel-pending').click();
  await expect(row).toHaveCount(0);
  await expect(alice.sendError).toHaveText('');
  await alice.page.unroute('**/api/send_message');
  const next = `after the refusal ${uid()}`;
  await alice.sendAndConfirm(next);
  alice.expectNoPanic();
});
