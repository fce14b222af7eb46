/**
 * Accounts in a real browser: signing up, logging in and out; logging out
 * in one tab closes the live connection of another tab of the same session
 * (close 4401: "signed out", not retried); a private room is invisible to a
 * second account; and a cross-origin form on the same host (another port,
 * so same-site: SameSite=Lax cookies are sent) cannot change anything,
 * because the Origin rule refuses it.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createRoom,
  expect,
  LIVE_TIMEOUT_MS,
  passwordFor,
  postMessage,
  sessionCookie,
  test,
  uid,
  uniqueName,
  ChatPage,
} from './fixtures/chat';

function accountName(prefix: string): string {
  return uniqueName(prefix).slice(0, 32);
}

test('sign up, log out and log in with the header and pages', async ({ newUser }) => {
  const name = accountName('ivy');
  const user = await newUser(null);
  const { page } = user;
  await page.goto('/');
  await page.getByTestId('sign-up-link').click();
  await expect(page).toHaveURL(/\/signup$/);
  await page.getByTestId('account-name').fill(name);
  await page.getByTestId('account-password').fill(passwordFor(name));
  await page.getByTestId('account-submit').click();
  await expect(user.displayName).toHaveText(name);
  await expect(page.getByTestId('room-name'), 'signed in, rooms can be created').toBeVisible();

  await page.getByTestId('log-out').click();
  await expect(page.getByTestId('log-in-link')).toBeVisible();
  await expect(user.displayName).toHaveCount(0);
  await expect(page.getByTestId('sign-in-to-create')).toBeVisible();

  await user.logIn(name);
  await page.getByTestId('account-link').click();
  await expect(page.getByTestId('session')).toHaveCount(1);
  await expect(page.getByTestId('session')).toContainText('(this session)');
  user.expectNoPanic();
});

test('logging out in one tab signs the other tab out of its live connection', async ({ newUser, request }) => {
  const name = accountName('jay');
  await sessionCookie(name);
  const room = await createRoom(request);
  const first = await newUser(null);
  await first.logIn(name);
  await first.open(room.id);
  const second = new ChatPage(await first.context.newPage(), 'second tab');
  await second.open(room.id);

  await first.page.getByTestId('log-out').click();
  await expect(first.page.getByTestId('log-in-link')).toBeVisible();
  await expect(second.status, 'the other tab is told its session ended').toHaveAttribute(
    'data-status',
    'signed out',
    { timeout: LIVE_TIMEOUT_MS },
  );
  second.expectNoPanic();
});

test('a private room is invisible to a second account', async ({ newUser }) => {
  const owner = await newUser(accountName('kim'));
  const roomName = uniqueName('private');
  await owner.page.goto('/');
  await owner.page.getByTestId('room-name').fill(roomName);
  await owner.page.getByTestId('room-private').check();
  await owner.page.getByRole('button', { name: 'Create room' }).click();
  await expect(owner.page).toHaveURL(/\/rooms\/\d+$/);
  await expect(owner.page.getByTestId('private-badge')).toBeVisible();
  const id = Number(new URL(owner.page.url()).pathname.split('/').pop());
  await owner.waitLive();
  const secret = `members only ${uid()}`;
  await owner.sendAndConfirm(secret);

  const stranger = await newUser(accountName('lou'));
  await stranger.page.goto('/');
  await expect(stranger.page.getByTestId('room-list')).toBeVisible();
  await expect(stranger.page.getByText(roomName)).toHaveCount(0);
  const response = await stranger.page.goto(`/rooms/${id}`);
  expect(response?.status()).toBe(404);
  await expect(stranger.roomError).toHaveText(`room ${id} not found`);
  await expect(stranger.page.getByText(secret)).toHaveCount(0);

  // Invited, the same account sees it. The owner's page calls the server
  // functions and redraws the list in place: it is not reloaded.
  await owner.page.evaluate(() => ((window as unknown as { sameDocument: boolean }).sameDocument = true));
  const members = owner.page.getByTestId('members');
  await owner.page.getByTestId('invite-name').fill(await stranger.displayName.innerText());
  await owner.page.getByTestId('invite').click();
  await expect(owner.page.getByTestId('member')).toHaveCount(2);
  await stranger.open(id);
  await stranger.expectMessage(secret);
  // A name that is no account is refused, and said so.
  await owner.page.getByTestId('invite-name').fill('nobody-here');
  await owner.page.getByTestId('invite').click();
  await expect(members.getByRole('alert')).toHaveText('account “nobody-here” not found');
  await expect(owner.page.getByTestId('member')).toHaveCount(2);
  // Removed, the stranger is out again.
  await owner.page.getByTestId('remove-member').click();
  await expect(owner.page.getByTestId('member')).toHaveCount(1);
  await expect(members.getByRole('alert')).toHaveText('');
  expect(await owner.page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
  const again = await stranger.page.goto(`/rooms/${id}`);
  expect(again?.status()).toBe(404);
});

test('an access token is created from the account page with the scopes ticked', async ({ newUser }) => {
  const user = await newUser(accountName('tia'));
  await user.page.goto('/account');
  await user.waitLive();
  const label = uniqueName('bot').slice(0, 32);
  await user.page.getByTestId('token-label').fill(label);
  await user.page.getByLabel('write', { exact: true }).check();
  await user.page.getByTestId('create-token').click();
  await expect(user.page.getByTestId('new-token')).toHaveText(/\S{20,}/);
  const row = user.page.getByTestId('token').filter({ hasText: label });
  await expect(row).toContainText('read,write');
  await expect(row).not.toContainText('publish');
});

test('a cross-origin form on the same host cannot post or log out', async ({ newUser, request, baseURL }) => {
  const room = await createRoom(request);
  const name = accountName('mo');
  const victim = await newUser(name);
  await victim.open(room.id);
  const forged = `forged ${uid()}`;
  const target = new URL(baseURL ?? 'http://127.0.0.1:3000');
  const page = `<!doctype html><html><body>
    <form id="send" method="post" action="${target.origin}/api/send_message" target="send-frame">
      <input name="room_id" value="${room.id}"><input name="client_id" value="${randomUUID()}">
      <input name="body" value="${forged}">
    </form>
    <form id="out" method="post" action="${target.origin}/api/log_out" target="out-frame"></form>
    <iframe name="send-frame"></iframe><iframe name="out-frame"></iframe>
  </body></html>`;
  const attacker: Server = createServer((_, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(page);
  });
  await new Promise<void>((done) => attacker.listen(0, target.hostname, done));
  try {
    const port = (attacker.address() as AddressInfo).port;
    const evil = await victim.context.newPage();
    await evil.goto(`http://${target.hostname}:${port}/`);
    const answers: number[] = [];
    evil.on('response', (r) => {
      if (r.url().startsWith(`${target.origin}/api/`)) answers.push(r.status());
    });
    await evil.evaluate(() => {
      (document.getElementById('send') as HTMLFormElement).submit();
      (document.getElementById('out') as HTMLFormElement).submit();
    });
    await expect.poll(() => answers.length, { timeout: 15_000 }).toBe(2);
    expect(answers, 'both forged posts are refused').toEqual([403, 403]);
  } finally {
    await new Promise((done) => attacker.close(done));
  }
  // Nothing changed: no message, and the victim is still signed in and live.
  const check = await postMessage(request, room.id, name, `still me ${uid()}`);
  expect(check.status(), 'the session survived the forged log-out').toBe(200);
  await victim.reload();
  await expect(victim.displayName).toHaveText(name);
  await expect(victim.message(forged)).toHaveCount(0);
});
