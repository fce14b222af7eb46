/**
 * WebSocket compression with a real browser: Chromium offers
 * permessage-deflate, the server agrees (without context takeover, so it
 * keeps no compressor per connection), and long messages then travel
 * compressed both ways (Chromium compresses what it sends; the server
 * compresses each event once for every subscriber) and arrive whole, once.
 */
import type { ChatPage } from './fixtures/chat';
import { createRoom, expect, sendOverHttp, test, uid } from './fixtures/chat';

const AGREED = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';

/** Records the `Sec-WebSocket-Extensions` of each handshake the page makes. */
async function handshakes(p: ChatPage): Promise<{ offered: string[]; agreed: string[] }> {
  const seen = { offered: [] as string[], agreed: [] as string[] };
  const header = (headers: Record<string, string>) =>
    Object.entries(headers).find(([k]) => k.toLowerCase() === 'sec-websocket-extensions')?.[1] ?? 'none';
  const cdp = await p.context.newCDPSession(p.page);
  await cdp.send('Network.enable');
  cdp.on('Network.webSocketWillSendHandshakeRequest', (e) => seen.offered.push(header(e.request.headers)));
  cdp.on('Network.webSocketHandshakeResponseReceived', (e) => seen.agreed.push(header(e.response.headers)));
  return seen;
}

test('Chromium and the server agree permessage-deflate and long messages arrive whole both ways', async ({
  newUser,
  request,
}) => {
  const room = await createRoom(request);
  // Accounts of this test alone: what they leave unread stays out of other
  // tests' titles.
  const alice = await newUser(`alice-${uid()}`);
  const bob = await newUser(`bob-${uid()}`);
  const seen = [await handshakes(alice), await handshakes(bob)];
  await Promise.all([alice.open(room.id), bob.open(room.id)]);

  for (const s of seen) {
    await expect.poll(() => s.agreed.length).toBeGreaterThan(0);
    expect(s.offered[0]).toContain('permessage-deflate');
    expect(s.agreed).toEqual(s.agreed.map(() => AGREED));
  }

  // Long enough to be compressed (ws-compress-min-bytes is 128), and
  // compressible: Chromium compresses it on its way up.
  const fromAlice = `${'the numbers look like the numbers we expected, '.repeat(8)}${uid()}`;
  await alice.sendAndConfirm(fromAlice, { viaSocket: true });
  await bob.expectMessage(fromAlice);

  const fromBob = `${'and the same again from bob, '.repeat(10)}${uid()}`;
  await bob.sendAndConfirm(fromBob);
  await alice.expectMessage(fromBob);

  const short = `short ${uid()}`;
  await sendOverHttp(request, room.id, 'carol', short);
  for (const p of [alice, bob]) {
    await p.expectMessage(short);
    await expect(p.bodies).toHaveText([fromAlice, fromBob, short]);
    p.expectNoPanic();
  }
});
