import { defineConfig } from '@playwright/test'

// Debian's Chromium (`apt-get install chromium`): Playwright's own browser download
// is not reachable here. The flags keep it from calling home at start.
// E2E_PORT and E2E_DIST let two runs (or a build elsewhere) go side by side.
const port = Number(process.env.E2E_PORT ?? 8765)

export default defineConfig({
  testDir: 'e2e',
  outputDir: `test-results/output-${port}`,
  timeout: 90_000,
  expect: { timeout: 15_000 },
  workers: 1,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
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
    command: `bash e2e/serve.sh ${port} ${process.env.E2E_DIST ?? 'dist'}`,
    url: `http://127.0.0.1:${port}/api/v1/health`,
    timeout: 240_000,
    reuseExistingServer: false,
    stdout: 'ignore',
  },
})
