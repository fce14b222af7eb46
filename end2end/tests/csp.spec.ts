/**
 * The strict Content Security Policy (no 'unsafe-inline' scripts; a nonce
 * per response) lets the app's own scripts run: no violation is reported
 * while pages load, hydrate, go live and navigate.
 */
import { createRoom, expect, test } from './fixtures/chat';

test('the app runs under its CSP with no violation', async ({ newUser, request }) => {
  const room = await createRoom(request);
  const alice = await newUser('alice');
  await alice.context.addInitScript(() => {
    const w = window as unknown as { __csp: string[] };
    w.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const response = await alice.page.goto(`/rooms/${room.id}`);
  const csp = response?.headers()['content-security-policy'] ?? '';
  expect(csp).toContain("'nonce-");
  expect(csp).not.toContain('unsafe-inline');
  await alice.waitLive();
  await alice.sendAndConfirm('under a strict policy');
  await alice.leaveRoom();
  const violations = await alice.page.evaluate(() => (window as unknown as { __csp: string[] }).__csp);
  expect(violations).toEqual([]);
  alice.expectNoPanic();
});
