/**
 * Leaving a room while its work is in flight never kills the page: a panic
 * in the WebAssembly aborts everything (router, hydration, socket), so each
 * case leaves the room mid-task, checks the room list renders, that no page
 * error or panic was logged, and that the app still works afterwards.
 * Also: subscription errors reach the room (a transient one is retried, a
 * permanent one is shown), and rows are keyed by their full version.
 */
import type { Route } from '@playwright/test';
import { createRoom, expect, sendOverHttp, test, uid, type ChatPage } from './fixtures/chat';
import { SocketControl } from './fixtures/socket';

/** Holds every request matching `pattern` until `release()`; counts them. */
async function holdRequests(page: ChatPage['page'], pattern: string) {
  const held: Route[] = [];
  let seen = 0;
  await page.route(pattern, (route) => {
    seen += 1;
    held.push(route);
  });
  return {
    seen: () => seen,
    async release() {
      for (const r of held.splice(0)) await r.continue().catch(() => {});
      await page.unroute(pattern);
    },
  };
}

/** After leaving, the app still navigates into a room and shows it live. */
async function stillWorks(p: ChatPage, roomId: number, text: string) {
  await p.page.goto(`/rooms/${roomId}`);
  await p.waitLive();
  await p.expectMessage(text);
  p.expectNoPanic();
}

test('leaving a room while it backfills a gap', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const alice = await newUser('alice');
  const socket = await SocketControl.install(alice.context);
  await alice.open(room.id);
  const tag = uid();
  // The socket's copy of bob's message is held back, so alice's own send
  // (answered over HTTP) arrives past a gap and starts a backfill.
  socket.pause();
  await sendOverHttp(request, room.id, 'bob', `from bob ${tag}`);
  const backfill = await holdRequests(alice.page, '**/api/events_since**');
  await alice.send(`from alice ${tag}`);
  await expect.poll(backfill.seen, { message: 'the backfill started' }).toBeGreaterThan(0);
  await alice.leaveRoom();
  socket.resume();
  await backfill.release();
  alice.expectNoPanic();
  await stillWorks(alice, room.id, `from alice ${tag}`);
});

test('leaving a room while it reloads its snapshot', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const first = await sendOverHttp(request, room.id, 'bob', `seed ${uid()}`);
  const alice = await newUser('alice');
  const socket = await SocketControl.install(alice.context);
  await alice.open(room.id);
  const reload = await holdRequests(alice.page, '**/api/room_snapshot**');
  socket.inject({
    type: 'reset',
    topic: `room:${room.id}`,
    version: first.version,
    reason: 'injected by the test',
  });
  await expect.poll(reload.seen, { message: 'the reload started' }).toBeGreaterThan(0);
  await alice.leaveRoom();
  await reload.release();
  alice.expectNoPanic();
  await stillWorks(alice, room.id, first.data.body);
});

test('leaving a room while a send is failing: it goes on from the outbox and lands once', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const seed = await sendOverHttp(request, room.id, 'bob', `seed ${uid()}`);
  const alice = await newUser('alice');
  const socket = await SocketControl.install(alice.context);
  await alice.open(room.id);
  // The server is unreachable: no socket, and every send request fails.
  let attempts = 0;
  await alice.page.route('**/api/send_message', (route) => {
    attempts += 1;
    return route.abort('connectionrefused');
  });
  await socket.drop();
  const text = `delivered later ${uid()}`;
  await alice.send(text);
  await expect.poll(() => attempts, { message: 'the first attempt failed' }).toBeGreaterThan(0);
  await alice.leaveRoom();
  // The write belongs to the tab's outbox, not to the room: it is retried
  // after the room was left (and nothing touches the room's signals).
  const after = attempts;
  await expect.poll(() => attempts, { message: 'retried after leaving', timeout: 15_000 }).toBeGreaterThan(after);
  alice.expectNoPanic();
  await alice.page.unroute('**/api/send_message');
  socket.release();
  await stillWorks(alice, room.id, seed.data.body);
  await alice.expectConfirmed(text, 15_000);
});

test('subscription errors: a transient one is retried, a permanent one is shown', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const alice = await newUser('alice');
  const socket = await SocketControl.install(alice.context);
  await alice.open(room.id);
  const topic = `room:${room.id}`;
  const before = socket.sentOf('subscribe', topic).length;
  socket.inject({ type: 'error', code: 'internal', message: 'storage hiccup', topic });
  await expect
    .poll(() => socket.sentOf('subscribe', topic).length, { message: 'subscribed again after the error' })
    .toBeGreaterThan(before);
  await expect(alice.roomProblem).toHaveText('');
  socket.inject({ type: 'error', code: 'not_found', message: `topic ${topic} not found`, topic });
  await expect(alice.roomProblem).toHaveText(`topic ${topic} not found`);
  alice.expectNoPanic();
});

test('after an epoch change, rows with the same seq show the new epoch’s messages', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const tag = uid();
  const sent = await sendOverHttp(request, room.id, 'bob', `old epoch ${tag}`);
  const alice = await newUser('alice');
  const socket = await SocketControl.install(alice.context);
  await alice.open(room.id);
  await alice.expectMessage(`old epoch ${tag}`);
  // The next snapshot comes from "another history": same seqs, another epoch.
  let snapshots = 0;
  const held: Route[] = [];
  await alice.page.route('**/api/room_snapshot**', async (route) => {
    snapshots += 1;
    // Later reloads (the server resets the fake epoch) wait until the test
    // has looked at the first one.
    if (snapshots > 1) return void held.push(route);
    const response = await route.fetch();
    const body = await response.json();
    const epoch = body.log.version.epoch + 1;
    body.log.version.epoch = epoch;
    for (const e of body.log.events) {
      e.version.epoch = epoch;
      e.data.body = `new epoch ${tag}`;
    }
    await route.fulfill({ response, json: body });
  });
  socket.inject({ type: 'reset', topic: `room:${room.id}`, version: sent.version, reason: 'test' });
  await alice.expectMessage(`new epoch ${tag}`);
  await expect(alice.message(`old epoch ${tag}`)).toHaveCount(0);
  for (const r of held) await r.continue().catch(() => {});
  await alice.page.unroute('**/api/room_snapshot**');
  // Back on the server's own history.
  await alice.expectMessage(`old epoch ${tag}`);
  alice.expectNoPanic();
});
