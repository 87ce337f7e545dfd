import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// `npm run dev` proxies the API to a `strata serve` on port 8000; the built app is
// served by `strata serve` itself at /.
//
// Screens are split by route (App.tsx's lazy imports), so a screen's components and
// chart library load with it; React is a chunk of its own, which a new release of the
// app leaves valid in the browser's cache.
export default defineConfig({
  plugins: [react()],
  server: { proxy: { '/api': 'http://127.0.0.1:8000' } },
  build: {
    rolldownOptions: {
      output: {
        codeSplitting: {
          groups: [
            {
              name: 'react',
              test: /node_modules[\\/](react|react-dom|react-router|react-router-dom|scheduler)[\\/]/,
            },
          ],
        },
      },
    },
  },
})
