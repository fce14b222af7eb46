/**
 * Hostile names are text in the browser too: a room named with markup
 * (`</title><script>…`, a meta refresh, event-handler attributes) and a
 * display name with markup run nothing, navigate nowhere, show as written,
 * and the page still hydrates and goes live. (The server-rendered HTML is
 * checked by tests/hostile_input.rs.)
 */
import { createRoom, expect, sendOverHttp, test, uid } from './fixtures/chat';

const ROOM_NAMES = [
  '</title><script>alert(1)</script>',
  '</title><meta http-equiv=refresh content=0;url=//elsewhere>',
  '"><img src=x onerror=alert(1)>',
];

for (const hostile of ROOM_NAMES) {
  test(`a room named ${JSON.stringify(hostile)} is only a name`, async ({ newUser, request }) => {
    // The e2e database is fresh for every run, and each name is used once.
    const name = hostile;
    const room = await createRoom(request, name);
    const author = '<svg onload=alert(2)>';
    const body = `</script><script>alert(3)</script> ${uid()}`;
    await sendOverHttp(request, room.id, author, body);
    const alice = await newUser('alice');
    const dialogs: string[] = [];
    alice.page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await alice.open(room.id);
    await expect(alice.page).toHaveTitle(`${name} · tandem`);
    await expect(alice.page.locator('h1.room-name')).toHaveText(name);
    await alice.expectMessage(body);
    await expect(alice.message(body).locator('.author')).toHaveText(author);
    await expect(alice.page).toHaveURL(new RegExp(`/rooms/${room.id}$`));
    expect(dialogs, 'no script ran').toEqual([]);
    alice.expectNoPanic();
  });
}
