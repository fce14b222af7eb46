/**
 * Writing needs an account: an anonymous visitor reads a room and is asked
 * to log in instead of getting a composer; after logging in, the same room
 * can be written to. The server refuses over-long messages (the input caps
 * them at 2000 characters, so that limit is checked over HTTP).
 */
import { createRoom, expect, postMessage, sessionCookie, test, uid, uniqueName } from './fixtures/chat';

test('an anonymous visitor reads a room and is asked to log in to write', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const seeded = `readable ${uid()}`;
  expect((await postMessage(request, room.id, 'heidi', seeded)).status()).toBe(200);
  const anon = await newUser(null);
  await anon.open(room.id);
  await anon.expectMessage(seeded);
  await expect(anon.displayName).toHaveCount(0);
  await expect(anon.input).toHaveCount(0);
  await expect(anon.page.getByTestId('sign-in-to-write')).toBeVisible();
  const res = await postMessage(request, room.id, null, 'anonymous write');
  expect(res.status()).toBe(401);
});

test('after logging in, the room can be written to', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const name = uniqueName('grace').slice(0, 32);
  await sessionCookie(name);
  const anon = await newUser(null);
  await anon.logIn(name);
  await anon.open(room.id);
  const text = `now signed in ${uid()}`;
  await anon.sendAndConfirm(text);
  await expect(anon.message(text).locator('.author')).toHaveText(name);
  await expect(anon.sendError).toHaveText('');
});

test('the server refuses a message over 2000 characters', async ({ newUser, request }) => {
  const room = await createRoom(request);

  const res = await postMessage(request, room.id, 'heidi', 'x'.repeat(2001));
  expect(res.status()).toBe(400);
  expect(await res.text()).toContain('at most 2000 characters');

  // Exactly 2000 is fine.
  const ok = await postMessage(request, room.id, 'heidi', 'y'.repeat(2000));
  expect(ok.status(), await ok.text()).toBe(200);

  // The composer caps input at the same length.
  const heidi = await newUser('heidi');
  await heidi.open(room.id);
  await expect(heidi.input).toHaveAttribute('maxlength', '2000');
  await expect(heidi.messages).toHaveCount(1);
});
