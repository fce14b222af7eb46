/**
 * History: sent messages survive a reload, in order; a room with more than a
 * page of history shows the newest page, and "Load older messages" brings in
 * the rest without gaps or duplicates.
 */
import { randomUUID } from 'node:crypto';
import {
  HISTORY_PAGE,
  createRoom,
  expect,
  expectStrictlyAscending,
  sendOverHttp,
  test,
  uid,
} from './fixtures/chat';

test('sent messages are still shown, in order, after a reload', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const alice = await newUser('alice');
  await alice.open(room.id);

  const tag = uid();
  const sent = [`first ${tag}`, `second ${tag}`, `third ${tag}`];
  await alice.sendAndConfirm(sent[0]);
  await alice.sendAndConfirm(sent[1], { viaSocket: true });
  await alice.sendAndConfirm(sent[2]);
  await expect(alice.bodies).toHaveText(sent);
  const seqsBefore = await alice.seqs();
  expectStrictlyAscending(seqsBefore);

  await alice.reload();
  // The history is in the server-rendered page; no need to wait for live.
  await expect(alice.bodies).toHaveText(sent);
  await expect(alice.pending).toHaveCount(0);
  expect(await alice.seqs()).toEqual(seqsBefore);

  // And it stays that way once the page is hydrated and live.
  await alice.waitLive();
  await expect(alice.bodies).toHaveText(sent);
  expect(await alice.seqs()).toEqual(seqsBefore);
});

test('"load older" brings in the rest of a long history with no gaps or duplicates', async ({ newUser, request }) => {
  const total = HISTORY_PAGE + 5;
  const room = await createRoom(request);
  const tag = uid();
  const bodies = Array.from({ length: total }, (_, i) => `older ${tag} #${String(i + 1).padStart(2, '0')}`);

  // Sequentially, so that seq order is the order of `bodies`.
  const seqs: number[] = [];
  for (const body of bodies) {
    const event = await sendOverHttp(request, room.id, 'carol', body, randomUUID());
    seqs.push(event.version.seq);
  }
  expectStrictlyAscending(seqs, 'seqs returned by send_message');

  const viewer = await newUser('dave');
  await viewer.open(room.id);

  await test.step(`the snapshot shows the newest ${HISTORY_PAGE}`, async () => {
    await expect(viewer.messages).toHaveCount(HISTORY_PAGE);
    await expect(viewer.bodies).toHaveText(bodies.slice(total - HISTORY_PAGE));
    expect(await viewer.seqs()).toEqual(seqs.slice(total - HISTORY_PAGE));
    await expect(viewer.loadOlder).toBeVisible();
  });

  await test.step('load older shows all of them, in seq order, once each', async () => {
    await viewer.loadOlder.click();
    await expect(viewer.messages).toHaveCount(total);
    await expect(viewer.bodies).toHaveText(bodies);
    const shown = await viewer.seqs();
    expectStrictlyAscending(shown);
    expect(shown).toEqual(seqs);
    // Nothing older is left, so the button goes away.
    await expect(viewer.loadOlder).toHaveCount(0);
    await expect(viewer.pending).toHaveCount(0);
  });
});
