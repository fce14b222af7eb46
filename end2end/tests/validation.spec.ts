/**
 * Sending needs a display name: without one the composer shows an error and
 * keeps the typed text; choosing a name then lets the same text be sent.
 * The server refuses over-long messages (the input caps them at 2000
 * characters, so that limit is checked over HTTP).
 */
import { createRoom, expect, postMessage, test, uid } from './fixtures/chat';

test('sending without a display name shows an error and keeps the text', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const anon = await newUser(null);
  await anon.open(room.id);
  await expect(anon.displayName).toHaveCount(0);
  await expect(anon.nameInput).toBeVisible();

  const text = `who am I ${uid()}`;
  await anon.input.fill(text);
  await anon.sendButton.click();

  await expect(anon.sendError).toHaveText('choose a display name first');
  await expect(anon.input).toHaveValue(text);
  await expect(anon.message(text)).toHaveCount(0);
  await expect(anon.pending).toHaveCount(0);
  await expect(anon.messages).toHaveCount(0);
});

test('after choosing a name with the form, the kept text can be sent', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const anon = await newUser(null);
  await anon.open(room.id);

  const text = `now with a name ${uid()}`;
  await anon.input.fill(text);
  await anon.sendButton.click();
  await expect(anon.sendError).toHaveText('choose a display name first');
  await expect(anon.input).toHaveValue(text);

  await anon.setName('grace');
  const cookie = (await anon.context.cookies()).find((c) => c.name === 'tandem_name');
  expect(cookie?.value, 'the name form set the cookie').toBe('grace');

  await anon.sendButton.click();
  await anon.expectConfirmed(text);
  await expect(anon.message(text).locator('.author')).toHaveText('grace');
  await expect(anon.input).toHaveValue('');
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
