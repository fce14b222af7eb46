/**
 * Two users in two browser contexts share a room: a message sent by one
 * appears live in the other's page (no reload), exactly once, over both send
 * paths (server function, and WebSocket).
 */
import { createRoom, expect, expectStrictlyAscending, test, uid } from './fixtures/chat';

test('messages reach the other tab live and exactly once, over both send paths', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const alice = await newUser('alice');
  const bob = await newUser('bob');

  await Promise.all([alice.open(room.id), bob.open(room.id)]);
  await expect(alice.displayName).toHaveText('alice');
  await expect(bob.displayName).toHaveText('bob');
  await expect(alice.messages).toHaveCount(0);
  await expect(bob.messages).toHaveCount(0);

  // Mark both documents: if a page reloaded, the mark would be gone.
  for (const p of [alice, bob]) {
    await p.page.evaluate(() => {
      (window as unknown as { __e2eMark?: boolean }).__e2eMark = true;
    });
  }

  const fromAlice = `hello from alice ${uid()}`;
  await test.step('alice sends over the server function; bob sees it live', async () => {
    await alice.sendAndConfirm(fromAlice);
    await bob.expectMessage(fromAlice);
    await expect(bob.message(fromAlice).locator('.author')).toHaveText('alice');
  });

  const fromBob = `hi alice, bob here ${uid()}`;
  await test.step('bob sends over the WebSocket; alice sees it live', async () => {
    const overHttp: string[] = [];
    bob.page.on('request', (r) => {
      if (r.url().includes('/api/send_message')) overHttp.push(r.url());
    });
    await bob.sendAndConfirm(fromBob, { viaSocket: true });
    expect(overHttp, 'the message went over the WebSocket, not the server function').toEqual([]);
    await alice.expectMessage(fromBob);
    await expect(alice.message(fromBob).locator('.author')).toHaveText('bob');
  });

  await test.step('both pages agree: each message once, in order, nothing pending, no reload', async () => {
    for (const p of [alice, bob]) {
      await expect(p.bodies, `[${p.label}] exactly the two messages, in order`).toHaveText([fromAlice, fromBob]);
      await expect(p.pending, `[${p.label}] no pending rows`).toHaveCount(0);
      await expect(p.message(fromAlice)).toHaveCount(1);
      await expect(p.message(fromBob)).toHaveCount(1);
      expectStrictlyAscending(await p.seqs(), `[${p.label}] data-seq`);
      await expect(p.sendError).toHaveText('');
      await expect(p.status).toHaveAttribute('data-status', 'live');
      const marked = await p.page.evaluate(() => (window as unknown as { __e2eMark?: boolean }).__e2eMark === true);
      expect(marked, `[${p.label}] the page was not reloaded`).toBe(true);
    }
    expect(await alice.seqs()).toEqual(await bob.seqs());
  });
});
