import { defineConfig } from '@playwright/test'

// Debian's Chromium (`apt-get install chromium`): Playwright's own browser download
// is not reachable here. The flags keep it from calling home at start.
export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results/output',
  timeout: 60_000,
  workers: 1,
  reporter: [['list']],
  use: {
    baseURL: 'http://127.0.0.1:8765',
    viewport: { width: 1280, height: 800 },
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
  webServer: {
    command: 'bash e2e/serve.sh',
    url: 'http://127.0.0.1:8765/api/v1/health',
    timeout: 120_000,
    reuseExistingServer: false,
    stdout: 'ignore',
  },
})
