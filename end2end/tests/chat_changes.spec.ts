/**
 * Edits and deletions of messages, in real browsers: the author edits and
 * deletes their own messages, the room's owner deletes anyone's, others get
 * no such controls, and every tab converges: live, after a network cut, and
 * on a reload (the snapshot shows messages as they stand).
 */
import type { Page } from '@playwright/test';
import { ChatPage, ROOM_OWNER, createRoom, expect, sendOverHttp, test, uid } from './fixtures/chat';

/** Opens the edit box of the message `text`, types `next` and presses Enter. */
async function editMessage(p: ChatPage, text: string, next: string): Promise<void> {
  const row = p.message(text);
  await row.hover();
  await row.getByTestId('edit').click();
  const box = p.page.getByTestId('edit-input');
  await expect(box, 'the edit box opens with the text, focused').toHaveValue(text);
  await expect(box).toBeFocused();
  await box.fill(next);
  await box.press('Enter');
}

async function deleteMessage(p: ChatPage, text: string): Promise<void> {
  const row = p.message(text);
  await row.hover();
  await row.getByTestId('delete').click();
  await row.getByTestId('confirm-delete').click();
}

/** The rows of `p` marked deleted. */
function deletedRows(p: ChatPage) {
  return p.messages.filter({ has: p.page.getByTestId('deleted') });
}

async function goOffline(page: Page, offline: boolean): Promise<void> {
  await page.context().setOffline(offline);
}

test('edits and deletions converge across contexts, after a network cut and on reload', async ({
  newUser,
  request,
}) => {
  const room = await createRoom(request);
  const ann = await newUser('ann');
  const bob = await newUser('bob');
  await Promise.all([ann.open(room.id), bob.open(room.id)]);
  const [typo, fixed, second, secondFixed] = [`helo ${uid()}`, `hello ${uid()}`, `teh ${uid()}`, `the ${uid()}`];
  await ann.sendAndConfirm(typo);
  await bob.expectMessage(typo);

  await test.step('only the author sees edit and delete on a message', async () => {
    await expect(ann.message(typo).getByTestId('edit')).toHaveCount(1);
    await expect(ann.message(typo).getByTestId('delete')).toHaveCount(1);
    await expect(bob.message(typo).getByTestId('edit')).toHaveCount(0);
    await expect(bob.message(typo).getByTestId('delete')).toHaveCount(0);
  });

  await test.step('an edit reaches the other tab live, marked edited; focus goes back to the composer', async () => {
    await editMessage(ann, typo, fixed);
    await expect(ann.input).toBeFocused();
    for (const p of [ann, bob]) {
      await p.expectMessage(fixed);
      await expect(p.message(typo)).toHaveCount(0);
      await expect(p.message(fixed).getByTestId('edited')).toHaveText('(edited)');
    }
  });

  await test.step('a change made while another tab is cut off reaches it when it is back', async () => {
    await ann.sendAndConfirm(second);
    await bob.expectMessage(second);
    await goOffline(bob.page, true);
    await bob.waitNotLive();
    await editMessage(ann, second, secondFixed);
    await ann.expectMessage(secondFixed);
    await expect(bob.message(second), 'bob is offline: still the old text').toHaveCount(1);
    await goOffline(bob.page, false);
    await bob.waitLive();
    await bob.expectMessage(secondFixed);
  });

  await test.step('a deletion reaches the other tab, and both keep the row as deleted', async () => {
    await deleteMessage(ann, fixed);
    for (const p of [ann, bob]) {
      await expect(p.message(fixed)).toHaveCount(0);
      await expect(deletedRows(p)).toHaveCount(1);
      await expect(deletedRows(p)).toContainText('message deleted');
    }
    await expect(ann.input).toBeFocused();
  });

  await test.step('a reload shows the same state from the snapshot', async () => {
    const before = await bob.seqs();
    await bob.reload();
    await bob.waitLive();
    await expect(bob.bodies).toHaveText(['message deleted', secondFixed]);
    await expect(bob.message(secondFixed).getByTestId('edited')).toHaveCount(1);
    expect(await bob.seqs()).toEqual(before);
  });
  ann.expectNoPanic();
  bob.expectNoPanic();
});

test("the room's owner deletes anyone's message; an edit can be cancelled with Escape", async ({
  newUser,
  request,
}) => {
  const room = await createRoom(request);
  const text = `from dave ${uid()}`;
  await sendOverHttp(request, room.id, 'dave', text);
  const owner = await newUser(ROOM_OWNER);
  const dave = await newUser('dave');
  await Promise.all([owner.open(room.id), dave.open(room.id)]);

  await test.step('Escape leaves the text as it was', async () => {
    const row = dave.message(text);
    await row.hover();
    await row.getByTestId('edit').click();
    await dave.page.getByTestId('edit-input').fill('never saved');
    await dave.page.getByTestId('edit-input').press('Escape');
    await expect(dave.page.getByTestId('edit-input')).toHaveCount(0);
    await dave.expectMessage(text);
  });

  await test.step('the owner sees delete (not edit) on it, and deletes it for everyone', async () => {
    await expect(owner.message(text).getByTestId('edit')).toHaveCount(0);
    const row = owner.message(text);
    await row.hover();
    await row.getByTestId('delete').click();
    await row.getByTestId('keep').click();
    await owner.expectMessage(text);
    await deleteMessage(owner, text);
    for (const p of [owner, dave]) await expect(deletedRows(p)).toHaveCount(1);
    await expect(dave.message(text)).toHaveCount(0);
  });
  owner.expectNoPanic();
  dave.expectNoPanic();
});
