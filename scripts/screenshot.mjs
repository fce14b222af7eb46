// Makes docs/screenshot.png: a room as two people use it (own and others'
// messages, a grouped run, a link, an edit, a deletion, presence and
// "typing…"), in Chromium at 1100×760. Needs a running server with a fresh
// database (make run), and the end2end packages installed.
//   node scripts/screenshot.mjs [BASE_URL]
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import * as http from './tandem_http.mjs';

const require = createRequire(new URL('../end2end/package.json', import.meta.url));
const { chromium } = require('@playwright/test');
const base = process.argv[2] ?? 'http://127.0.0.1:3000';
const PASSWORD = 'screenshot-password';

const session = (name) => http.session(base, name, PASSWORD);
const call = (cookie, fn, form) => http.call(base, cookie, fn, form);

const [grace, linus] = [await session('grace'), await session('linus')];
const room = await call(grace, 'create_room', { name: 'release-planning' });
const say = (who, body) => call(who, 'send_message', { room_id: String(room.id), client_id: randomUUID(), body });
await say(linus, 'Morning! Is the 0.9 branch ready for a release candidate?');
await say(grace, 'Almost. The migration guide is up: https://example.com/tandem/0.9-migration');
await say(grace, 'Two review comments left, both small.');
const typo = await say(linus, 'Great, I will tag it after lunch');
await call(linus, 'edit_message', { room_id: String(room.id), client_id: randomUUID(), target: String(typo.version.seq), body: 'Great, I will tag rc1 after lunch.' });
const oops = await say(linus, 'wrong window, sorry');
await call(linus, 'delete_message', { room_id: String(room.id), client_id: randomUUID(), target: String(oops.version.seq) });
await say(grace, 'Sounds good.\nI will post the changelog draft here first.');

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const open = async (cookie) => {
  const context = await browser.newContext({ baseURL: base, viewport: { width: 1100, height: 760 }, timezoneId: 'Europe/Berlin' });
  await context.addCookies([{ name: 'tandem_session', value: cookie, url: base }]);
  const page = await context.newPage();
  await page.goto(`/rooms/${room.id}`);
  await page.waitForSelector('[data-testid="link-status"][data-status="live"]');
  return page;
};
const page = await open(grace);
const other = await open(linus);
await other.getByTestId('message-input').pressSequentially('Tagging now');
await page.getByText('linus is typing…').waitFor();
await page.getByTestId('message-input').fill('Thanks!');
await page.screenshot({ path: new URL('../docs/screenshot.png', import.meta.url).pathname });
await browser.close();
