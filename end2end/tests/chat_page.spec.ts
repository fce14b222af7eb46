/**
 * The room page as a person uses it: an empty state, multi-line messages
 * (Shift+Enter), own messages marked, consecutive messages grouped under a
 * day heading, safe links, times in the reader's zone, older messages that
 * load without losing the reader's place, a "new messages" marker while
 * scrolled up, and plain-form errors shown as text without JavaScript.
 */
import type { Locator } from '@playwright/test';
import { HISTORY_PAGE, createRoom, expect, sendOverHttp, test, uid } from './fixtures/chat';

/** Whether `row` is at least partly inside the visible part of `list`. */
async function inView(list: Locator, row: Locator): Promise<boolean> {
  const [l, r] = [await list.boundingBox(), await row.boundingBox()];
  if (!l || !r) return false;
  return r.y + r.height > l.y && r.y < l.y + l.height;
}

test('empty state, Shift+Enter lines, own messages, grouping, day headings and safe links', async ({
  newUser,
  request,
}) => {
  const room = await createRoom(request);
  const ann = await newUser('ann');
  await ann.open(room.id);
  await expect(ann.page.getByTestId('empty-room')).toHaveText('No messages yet. Say hello!');

  const [one, two] = [`line one ${uid()}`, `line two ${uid()}`];
  await test.step('Shift+Enter makes a new line, Enter sends', async () => {
    await ann.input.click();
    await ann.input.pressSequentially(one);
    await ann.input.press('Shift+Enter');
    await ann.input.pressSequentially(two);
    await expect(ann.input).toHaveValue(`${one}\n${two}`);
    await ann.input.press('Enter');
    await expect(ann.input).toHaveValue('');
    await ann.expectConfirmed(`${one}\n${two}`);
    await expect(ann.page.getByTestId('empty-room')).toHaveCount(0);
  });

  const again = `and again ${uid()}`;
  const link = 'https://example.com/a?b=1';
  const withLinks = `see ${link}. not javascript:alert(1) ${uid()}`;
  await test.step('own messages are marked; consecutive ones are grouped; others are not', async () => {
    await ann.sendAndConfirm(again);
    await sendOverHttp(request, room.id, 'bob', withLinks);
    await ann.expectMessage(withLinks);
    const rows = ann.messages;
    await expect(rows.nth(0)).toHaveClass(/\bown\b/);
    await expect(rows.nth(0)).not.toHaveClass(/\bgrouped\b/);
    await expect(rows.nth(1)).toHaveClass(/\bgrouped\b/);
    await expect(rows.nth(2)).not.toHaveClass(/\bown\b/);
    await expect(rows.nth(2)).not.toHaveClass(/\bgrouped\b/);
    await expect(rows.nth(2).locator('.author')).toBeVisible();
    // One day heading, on the first message of the day.
    await expect(ann.page.getByTestId('day').filter({ visible: true })).toHaveText(['Today']);
  });

  await test.step('http(s) addresses are links that open safely; nothing else is', async () => {
    const anchors = ann.message(withLinks).locator('a');
    await expect(anchors).toHaveCount(1);
    await expect(anchors).toHaveAttribute('href', link);
    await expect(anchors).toHaveText(link);
    await expect(anchors).toHaveAttribute('rel', /noopener/);
    await expect(anchors).toHaveAttribute('rel', /noreferrer/);
    await expect(anchors).toHaveAttribute('target', '_blank');
  });
  ann.expectNoPanic();
});

test("times are shown in the reader's time zone", async ({ newUser, request }) => {
  const room = await createRoom(request);
  const text = `what time ${uid()}`;
  await sendOverHttp(request, room.id, 'dave', text);
  // UTC+5:45 all year: no daylight saving to reason about.
  const reader = await newUser('erin', { timezoneId: 'Asia/Kathmandu' });
  await reader.open(room.id);
  const time = reader.message(text).locator('time');
  const utc = await time.getAttribute('datetime');
  expect(utc).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\dZ$/);
  const local = new Date(Date.parse(utc!.replace('Z', ':00Z')) + (5 * 60 + 45) * 60_000);
  const expected = `${String(local.getUTCHours()).padStart(2, '0')}:${String(local.getUTCMinutes()).padStart(2, '0')}`;
  await expect(time).toHaveText(expected);
  reader.expectNoPanic();
});

test("older messages load at the top without losing the reader's place; new ones are announced", async ({
  newUser,
  request,
}) => {
  const room = await createRoom(request);
  const total = HISTORY_PAGE * 2 + 10;
  const tag = uid();
  for (let i = 1; i <= total; i++) await sendOverHttp(request, room.id, 'dave', `m${i} ${tag}`);
  const reader = await newUser('erin');
  await reader.open(room.id);
  await expect(reader.messages).toHaveCount(HISTORY_PAGE);
  const list = reader.messageList;

  await test.step('scrolling to the top loads the next older page; the same message stays in view', async () => {
    const topmost = reader.messages.first();
    const seq = await topmost.getAttribute('data-seq');
    await list.evaluate((el) => {
      el.scrollTop = -el.scrollHeight;
    });
    await expect(reader.messages).toHaveCount(HISTORY_PAGE * 2);
    const same = reader.page.locator(`[data-testid="message"][data-seq="${seq}"]`);
    await expect.poll(() => inView(list, same), 'the message that was at the top is still in view').toBe(true);
    expect(await inView(list, reader.messages.first()), 'the new page is above the view').toBe(false);
  });

  await test.step('a message arriving while scrolled up is announced, and the marker takes the reader down', async () => {
    const fresh = `fresh ${uid()}`;
    await sendOverHttp(request, room.id, 'dave', fresh);
    const marker = reader.page.getByTestId('new-below');
    await expect(marker).toHaveText('↓ 1 new message');
    await marker.click();
    await expect(marker).toHaveCount(0);
    await expect.poll(() => inView(list, reader.message(fresh))).toBe(true);
  });
  reader.expectNoPanic();
});

test('without JavaScript a refused send shows its reason as text and a good one lands in the room', async ({
  newUser,
  request,
}) => {
  const room = await createRoom(request);
  const erin = await newUser('erin', { javaScriptEnabled: false });
  await erin.page.goto(`/rooms/${room.id}`);
  await erin.input.fill('   ');
  await erin.sendButton.click();
  await expect(erin.page).toHaveURL(new RegExp(`/rooms/${room.id}\\?error=message$`));
  await expect(erin.sendError).toHaveText(
    'Not sent: a message needs some text, at most 2000 characters, and no control characters.',
  );

  const text = `plain form ${uid()}`;
  await erin.input.fill(text);
  await erin.sendButton.click();
  await expect(erin.page).toHaveURL(new RegExp(`/rooms/${room.id}$`));
  await erin.expectMessage(text);
  await expect(erin.sendError).toHaveText('');
});
