/**
 * Presence and typing across browser contexts: who is here (each account
 * once, however many tabs), "X is typing…" that ends by itself or when the
 * message is sent, and join/leave notices outside the message log; a closed
 * context disappears from the others' pages.
 */
import { createRoom, expect, test, uid } from './fixtures/chat';

test('presence lists each account once, shows typing, and drops closed contexts', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const ann = await newUser('ann');
  const bob = await newUser('bob');
  await Promise.all([ann.open(room.id), bob.open(room.id)]);
  const here = ann.page.getByTestId('here');
  await expect(here).toHaveText('Here now: ann, bob');
  await expect(bob.page.getByTestId('here')).toHaveText('Here now: ann, bob');

  await test.step("a second tab of bob's does not list him twice", async () => {
    const second = await bob.context.newPage();
    await second.goto(`/rooms/${room.id}`);
    await expect(second.getByTestId('link-status')).toHaveAttribute('data-status', 'live', { timeout: 30_000 });
    await expect(second.getByTestId('here')).toHaveText('Here now: ann, bob');
    await expect(here).toHaveText('Here now: ann, bob');
    await second.close();
  });

  const typing = ann.page.getByTestId('typing');
  await test.step('typing shows on the other page and ends by itself', async () => {
    await bob.input.pressSequentially('thinking');
    await expect(typing).toHaveText('bob is typing…');
    await expect(bob.page.getByTestId('typing'), 'not shown to oneself').toHaveText('');
    await expect(typing, 'it expires without a message').toHaveText('', { timeout: 15_000 });
  });

  await test.step('sending ends typing at once', async () => {
    await bob.input.fill('');
    await bob.input.pressSequentially('hi');
    await expect(typing).toHaveText('bob is typing…');
    await bob.input.press('Enter');
    await ann.expectMessage('hi');
    await expect(typing).toHaveText('', { timeout: 3_000 });
  });

  await test.step('joins and departures are noticed without touching the log', async () => {
    const carol = await newUser('carol');
    await carol.open(room.id);
    await expect(ann.page.getByTestId('presence-notice')).toHaveText('carol joined');
    await expect(here).toHaveText('Here now: ann, bob, carol');
    await bob.context.close();
    await expect(here).toHaveText('Here now: ann, carol');
    await expect(ann.page.getByTestId('presence-notice')).toHaveText('bob left');
    await expect(ann.messages, 'presence wrote nothing to the log').toHaveCount(1);
  });
  ann.expectNoPanic();
});

test('an anonymous reader sees who is here but is not listed', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const dave = await newUser('dave');
  const reader = await newUser(null);
  await dave.open(room.id);
  await reader.open(room.id);
  await expect(reader.page.getByTestId('here')).toHaveText('Here now: dave');
  await expect(dave.page.getByTestId('here')).toHaveText('Here now: dave');
  const text = `visible ${uid()}`;
  await dave.sendAndConfirm(text);
  await reader.expectMessage(text);
});
