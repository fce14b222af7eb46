/**
 * The transport ladder behind a real proxy (nginx, `fixtures/proxy.ts`), in
 * the three configurations that each break the rungs above the expected
 * one: two users chat through the proxy, the header shows the rung the
 * ladder settled on, messages arrive both ways, nothing is doubled. Then a
 * proxy that changes under a conversation: from passing upgrades to
 * stripping them (the clients step down to SSE and catch up with nothing
 * lost) and back (they climb back to the WebSocket).
 */
import type { Browser } from '@playwright/test';
import { ChatPage, createRoom, expect, expectStrictlyAscending, signInContext, test, uid, uniqueName } from './fixtures/chat';
import { startProxy, type Proxy, type ProxyMode } from './fixtures/proxy';

/** Stepping down can take a few failed attempts per rung (a few seconds each). */
const SETTLE_MS = 60_000;

async function userVia(browser: Browser, proxy: Proxy, name: string): Promise<[ChatPage, string]> {
  const context = await browser.newContext({ baseURL: proxy.url });
  // An account of its own: other specs count 'alice's unread messages.
  const account = uniqueName(name.slice(0, 2));
  await signInContext(context, proxy.url, account);
  return [new ChatPage(await context.newPage(), `${name} via ${proxy.mode}`, proxy.url), account];
}

async function expectRung(p: ChatPage, rung: string, timeout = SETTLE_MS): Promise<void> {
  await expect(p.page.getByTestId('link-rung'), `[${p.label}] on ${rung}`).toHaveAttribute('data-rung', rung, {
    timeout,
  });
  await p.waitLive();
}

const CASES: { mode: ProxyMode; port: number; rung: string }[] = [
  { mode: 'websocket', port: 3101, rung: 'websocket' },
  { mode: 'no-upgrade', port: 3102, rung: 'sse' },
  { mode: 'buffering', port: 3103, rung: 'short-poll' },
];

for (const c of CASES) {
  test(`through nginx (${c.mode}) two users chat on ${c.rung}`, async ({ browser, request }) => {
    test.setTimeout(150_000);
    const proxy = await startProxy(c.mode, c.port);
    try {
      const room = await createRoom(request);
      const [alice, aliceName] = await userVia(browser, proxy, 'alice');
      const [bob, bobName] = await userVia(browser, proxy, 'bob');
      // The WebSockets each page makes before it settles (the early one included).
      const sockets = new Map<ChatPage, number>([
        [alice, 0],
        [bob, 0],
      ]);
      for (const p of [alice, bob]) p.page.on('websocket', () => sockets.set(p, sockets.get(p)! + 1));
      await Promise.all([alice.open(room.id), bob.open(room.id)]);
      // Counted as each settles (a climb back is tried 7.5 s or more later).
      const settled = new Map<ChatPage, number>();
      await Promise.all(
        [alice, bob].map(async (p) => {
          await expectRung(p, c.rung);
          settled.set(p, sockets.get(p)!);
        }),
      );
      if (c.mode === 'no-upgrade') {
        // Two failed attempts step down a rung, and the page's early socket,
        // refused before the app took it, is the first of them.
        for (const p of [alice, bob]) expect(settled.get(p), `[${p.label}] WebSockets before SSE`).toBe(2);
      }
      // Each sees both in the room, on every rung (a poll keeps its account
      // listed between polls).
      for (const p of [alice, bob]) {
        for (const name of [aliceName, bobName]) {
          await expect(p.page.getByTestId('here'), `[${p.label}] lists ${name}`).toContainText(name);
        }
      }

      const one = `alice through ${c.mode} ${uid()}`;
      const two = `bob through ${c.mode} ${uid()}`;
      await alice.sendAndConfirm(one);
      await bob.expectMessage(one);
      await bob.sendAndConfirm(two);
      await alice.expectMessage(two);
      for (const p of [alice, bob]) {
        await expect(p.bodies, `[${p.label}] each once, in order`).toHaveText([one, two]);
        expectStrictlyAscending(await p.seqs(), `[${p.label}] data-seq`);
        await expect(p.page.getByTestId('link-rung'), `[${p.label}] still on ${c.rung}`).toHaveAttribute(
          'data-rung',
          c.rung,
        );
        expect(p.failures, `[${p.label}] no page errors`).toEqual([]);
      }
      await Promise.all([alice.context.close(), bob.context.close()]);
    } finally {
      await proxy.stop();
    }
  });
}

test('a proxy that stops passing upgrades mid-conversation: down to SSE, nothing lost, then back up', async ({
  browser,
  request,
}) => {
  test.setTimeout(180_000);
  const port = 3104;
  let proxy = await startProxy('websocket', port);
  try {
    const room = await createRoom(request);
    const [alice] = await userVia(browser, proxy, 'alice');
    const [bob] = await userVia(browser, proxy, 'bob');
    await Promise.all([alice.open(room.id), bob.open(room.id)]);
    await Promise.all([expectRung(alice, 'websocket'), expectRung(bob, 'websocket')]);
    const sent: string[] = [];
    const say = async (from: ChatPage, to: ChatPage, what: string) => {
      const text = `${what} ${uid()}`;
      sent.push(text);
      await from.sendAndConfirm(text);
      await to.expectMessage(text);
    };
    await say(alice, bob, 'on the socket');

    await test.step('the proxy now strips Upgrade: both step down to SSE', async () => {
      await proxy.stop();
      proxy = await startProxy('no-upgrade', port);
      // Sent while the readers are finding their way down.
      const during = `sent during the switch ${uid()}`;
      sent.push(during);
      await bob.send(during);
      await Promise.all([expectRung(alice, 'sse'), expectRung(bob, 'sse')]);
      await alice.expectMessage(during);
      await say(alice, bob, 'on SSE');
      await say(bob, alice, 'on SSE, back');
    });

    await test.step('upgrades pass again: both climb back to the WebSocket', async () => {
      await proxy.stop();
      proxy = await startProxy('websocket', port);
      await Promise.all([expectRung(alice, 'websocket'), expectRung(bob, 'websocket')]);
      await say(alice, bob, 'back on the socket');
    });

    for (const p of [alice, bob]) {
      await expect(p.bodies, `[${p.label}] every message once, in order`).toHaveText(sent);
      await expect(p.pending).toHaveCount(0);
      expectStrictlyAscending(await p.seqs(), `[${p.label}] data-seq`);
      expect(p.failures, `[${p.label}] no page errors`).toEqual([]);
    }
    expect(await alice.seqs()).toEqual(await bob.seqs());
    await Promise.all([alice.context.close(), bob.context.close()]);
  } finally {
    await proxy.stop();
  }
});
