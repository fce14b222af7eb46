import { defineConfig } from '@playwright/test';

/**
 * End-to-end tests for tandem.
 *
 * `cargo leptos end-to-end` builds the app, starts the server at
 * http://127.0.0.1:3000 and then runs `npx playwright test` in this folder,
 * so there is no `webServer` here. The database is shared between runs:
 * every test creates its own uniquely named room and never assumes a fresh
 * database.
 *
 * Browsers are not downloaded: the system Chromium is used
 * (`CHROMIUM_PATH`, default /usr/bin/chromium).
 */
const baseURL = process.env.BASE_URL || 'http://127.0.0.1:3000';

export default defineConfig({
  // scripts/e2e_release.sh runs ./release against the release binary.
  testDir: process.env.TANDEM_E2E_DIR || './tests',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: 'list',
  outputDir: 'test-results',
  use: {
    baseURL,
    headless: true,
    actionTimeout: 15_000,
    navigationTimeout: 30_000,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  projects: [
    {
      name: 'chromium',
      use: { browserName: 'chromium' },
    },
  ],
});
