/**
 * Unread counts and read positions in real browsers: the room list shows
 * unread messages and the newest one live, the title carries the count (so
 * a background tab shows it), a room read in one tab is read in the others,
 * and a hidden tab does not mark anything read.
 */
import type { Page } from '@playwright/test';
import { ChatPage, createRoom, expect, sendOverHttp, test, uid } from './fixtures/chat';

/** Makes `page` look hidden (a background tab) or shown again. */
async function setHidden(page: Page, hidden: boolean): Promise<void> {
  await page.evaluate((h) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
    document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
  }, hidden);
}

function row(p: ChatPage, roomId: number) {
  return p.page.locator(`[data-testid="room-row"][data-room="${roomId}"]`);
}

test('unread counts show live in the list and the title, and follow the read position across tabs', async ({
  newUser,
  request,
}) => {
  const room = await createRoom(request);
  // A fresh account: the title counts unread messages in every room it read.
  const name = `ann-${uid()}`;
  const ann = await newUser(name);
  await ann.open(room.id);
  await sendOverHttp(request, room.id, 'bob', `first ${uid()}`);
  await expect(ann.messages).toHaveCount(1);
  // Read (on screen, tab visible); now to the room list.
  await ann.leaveRoom();
  await ann.waitLive();
  const badge = row(ann, room.id).getByTestId('room-unread');
  await expect(badge).toHaveCount(0);

  const news = `news ${uid()}`;
  await test.step('messages by others while away: count, newest message and title, live', async () => {
    await sendOverHttp(request, room.id, 'bob', `one ${uid()}`);
    await sendOverHttp(request, room.id, 'bob', news);
    await expect(badge).toHaveText('2');
    await expect(row(ann, room.id).getByTestId('room-last')).toHaveText(`bob: ${news}`);
    await expect(ann.page).toHaveTitle(/^\(2\) /);
  });

  await test.step('reading the room in another tab clears the count here too', async () => {
    const other = new ChatPage(await ann.context.newPage(), 'ann-2');
    await other.open(room.id);
    await other.expectMessage(news);
    await expect(badge).toHaveCount(0);
    await expect(ann.page).not.toHaveTitle(/^\(/);

    await test.step('a hidden tab reads nothing; shown again, it does', async () => {
      await setHidden(other.page, true);
      const unseen = `unseen ${uid()}`;
      await sendOverHttp(request, room.id, 'bob', unseen);
      await other.expectMessage(unseen);
      await expect(badge).toHaveText('1');
      await expect(other.page, 'the background tab shows the count').toHaveTitle(/^\(1\) /);
      await setHidden(other.page, false);
      await expect(badge).toHaveCount(0);
    });
    await other.page.close();
  });

  await test.step("one's own messages are never unread", async () => {
    await sendOverHttp(request, room.id, name, `mine ${uid()}`);
    await expect(row(ann, room.id).getByTestId('room-last')).toHaveText(new RegExp(`^${name}: mine`));
    await expect(badge).toHaveCount(0);
  });
  ann.expectNoPanic();
});

test("a new public room appears in other tabs' room lists", async ({ newUser, request }) => {
  // The list pages by id: open the page that starts after the newest room.
  const before = await createRoom(request);
  const viewer = await newUser(null);
  await viewer.page.goto(`/?after=${before.id}`);
  await viewer.waitLive();
  const room = await createRoom(request);
  await expect(viewer.page.getByTestId('room-list').getByRole('link', { name: room.name, exact: true })).toBeVisible();
});
