/**
 * Every rung of the transport ladder, forced with `?transport=` (no proxy
 * here; `proxy.spec.ts` breaks the rungs for real): two users chat, the
 * header shows the rung, messages arrive both ways, once each, in order, and
 * the page's requests are the rung's own (no WebSocket below the top rung).
 * The account page's setting forces a rung too.
 */
import { createRoom, expect, expectStrictlyAscending, test, uid, uniqueName, type ChatPage } from './fixtures/chat';

const RUNGS = [
  { name: 'websocket', label: 'WebSocket' },
  { name: 'sse', label: 'SSE' },
  { name: 'long-poll', label: 'long polling' },
  { name: 'short-poll', label: 'short polling' },
];

/** Opens the room on a forced rung and records the page's live requests. */
async function openOn(p: ChatPage, roomId: number, rung: string): Promise<string[]> {
  const seen: string[] = [];
  p.page.on('websocket', (ws) => seen.push(`ws ${ws.url()}`));
  p.page.on('request', (r) => {
    const path = new URL(r.url()).pathname;
    if (path === '/sse' || path === '/poll') seen.push(`${path} ${r.url()}`);
  });
  await p.page.goto(`/rooms/${roomId}?transport=${rung}`);
  await p.waitLive();
  return seen;
}

for (const rung of RUNGS) {
  test(`two users chat on ${rung.label}, forced`, async ({ newUser, request }) => {
    const room = await createRoom(request);
    // Accounts of their own: other specs count 'alice's unread messages.
    const alice = await newUser(uniqueName('al'));
    const bob = await newUser(uniqueName('bo'));
    const [aliceSeen, bobSeen] = await Promise.all([openOn(alice, room.id, rung.name), openOn(bob, room.id, rung.name)]);
    for (const p of [alice, bob]) {
      await expect(p.page.getByTestId('link-rung')).toHaveAttribute('data-rung', rung.name);
      await expect(p.page.getByTestId('link-rung')).toHaveText(rung.label);
    }

    const one = `from alice on ${rung.name} ${uid()}`;
    const two = `from bob on ${rung.name} ${uid()}`;
    const three = `alice again ${uid()}`;
    await alice.sendAndConfirm(one);
    await bob.expectMessage(one);
    await bob.sendAndConfirm(two);
    await alice.expectMessage(two);
    await alice.sendAndConfirm(three);
    await bob.expectMessage(three);

    for (const p of [alice, bob]) {
      await expect(p.bodies, `[${p.label}] each message once, in order`).toHaveText([one, two, three]);
      await expect(p.pending).toHaveCount(0);
      expectStrictlyAscending(await p.seqs(), `[${p.label}] data-seq`);
      expect(p.failures, `[${p.label}] no page errors`).toEqual([]);
    }
    expect(await alice.seqs()).toEqual(await bob.seqs());
    for (const seen of [aliceSeen, bobSeen]) {
      const sockets = seen.filter((s) => s.startsWith('ws '));
      if (rung.name === 'websocket') {
        expect(sockets.length, 'one WebSocket: the early one, taken over').toBe(1);
        expect(seen.filter((s) => !s.startsWith('ws ')), 'and no HTTP rung').toEqual([]);
      } else {
        expect(sockets, 'no WebSocket on a forced lower rung').toEqual([]);
        const own = rung.name === 'sse' ? '/sse ' : '/poll ';
        expect(seen.some((s) => s.startsWith(own)), `requests to ${own.trim()}`).toBe(true);
        if (rung.name === 'long-poll') expect(seen.some((s) => s.includes('wait=1'))).toBe(true);
        if (rung.name === 'short-poll') expect(seen.some((s) => s.includes('wait=1'))).toBe(false);
      }
    }
  });
}

test('the page opens its WebSocket while it loads and the app takes that one over', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const dave = await newUser(uniqueName('da'));
  // Every socket the page makes, with the document's state at that moment:
  // the early socket is made while the head is parsed ("loading"); the app
  // alone would make its socket after hydrating.
  await dave.page.addInitScript(() => {
    const Native = window.WebSocket;
    const made: string[] = [];
    (window as unknown as { madeSockets: string[] }).madeSockets = made;
    window.WebSocket = class extends Native {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        made.push(document.readyState);
      }
    };
  });
  await dave.open(room.id);
  await expect(dave.page.getByTestId('link-rung')).toHaveAttribute('data-rung', 'websocket');
  const text = `over the early socket ${uid()}`;
  await dave.sendAndConfirm(text);
  await expect(dave.bodies).toHaveText([text]);
  const made = await dave.page.evaluate(() => (window as unknown as { madeSockets: string[] }).madeSockets);
  expect(made, 'one socket, made before the page had loaded, and used by the app').toEqual(['loading']);
  expect(await dave.page.evaluate(() => 'tandemEarlySocket' in window), 'taken').toBe(false);
  // Again with a `transport` that names no rung (passed over, as the app
  // does) and this tab's remembered rung (the WebSocket).
  await dave.page.goto(`/rooms/${room.id}?transport=bogus`);
  await dave.waitLive();
  await expect(dave.page.getByTestId('link-rung')).toHaveAttribute('data-rung', 'websocket');
  const again = await dave.page.evaluate(() => (window as unknown as { madeSockets: string[] }).madeSockets);
  expect(again, 'the early socket again, and only it').toEqual(['loading']);
  expect(dave.failures).toEqual([]);
});

test('the account setting forces a rung in this browser until set back', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const carol = await newUser(uniqueName('ca'));
  await carol.page.goto('/account');
  await carol.waitLive(); // hydrated: the select has its handler
  const setting = carol.page.getByTestId('transport-setting');
  await expect(setting).toHaveValue('auto');
  await Promise.all([carol.page.waitForEvent('load'), setting.selectOption('long-poll')]);
  await expect(carol.page.getByTestId('transport-setting')).toHaveValue('long-poll');
  const sockets: string[] = [];
  carol.page.on('websocket', (ws) => sockets.push(ws.url()));
  await carol.open(room.id);
  await expect(carol.page.getByTestId('link-rung')).toHaveAttribute('data-rung', 'long-poll');
  const text = `over long polling by setting ${uid()}`;
  await carol.sendAndConfirm(text);
  expect(sockets, 'no WebSocket, not even the early one, while the setting says long polling').toEqual([]);
  await carol.page.goto('/account');
  await carol.waitLive();
  await expect(carol.page.getByTestId('transport-setting')).toHaveValue('long-poll');
  await Promise.all([carol.page.waitForEvent('load'), carol.page.getByTestId('transport-setting').selectOption('auto')]);
  await carol.open(room.id);
  await expect(carol.page.getByTestId('link-rung')).toHaveAttribute('data-rung', 'websocket');
});

test('short polling polls again when the answer says, not on a fixed beat', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const dana = await newUser(uniqueName('sp'));
  // In the page: count the polls it makes, and have every answer say
  // `poll_ms` 30 s where this server says 2 s (its short-poll-ms).
  await dana.page.addInitScript(() => {
    const w = window as unknown as { __polls: number; fetch: typeof fetch };
    const real = w.fetch.bind(window);
    w.__polls = 0;
    w.fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input), location.href);
      if (url.pathname !== '/poll') return real(input, init);
      w.__polls += 1;
      const res = await real(input, init);
      if (res.status !== 200) return res;
      const answer = await res.json();
      answer.poll_ms = 30_000;
      return new Response(JSON.stringify(answer), { status: 200, headers: res.headers });
    };
  });
  // The page's timers run on a clock the test moves.
  await dana.page.clock.install();
  await dana.page.goto(`/rooms/${room.id}?transport=short-poll`);
  await dana.waitLive();
  // Settled: no request for 500 ms, so no poll for a change of topics is on its way.
  await dana.page.waitForLoadState('networkidle');
  const polls = () => dana.page.evaluate(() => (window as unknown as { __polls: number }).__polls);
  await dana.page.clock.pauseAt(await dana.page.evaluate(() => Date.now() + 1_000));
  const before = await polls();
  await dana.page.clock.runFor(25_000);
  expect(await polls(), 'no poll within the 30 s the last answer said').toBe(before);
  await dana.page.clock.runFor(10_000);
  await expect.poll(polls, { message: 'the next poll after 30 s' }).toBe(before + 1);
  expect(dana.failures, 'no page errors').toEqual([]);
});
