#!/usr/bin/env node
// The `tessera` binary: runs the compiled CLI (npm run build creates dist/).
import('../dist/cli/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    console.error('tessera: not built yet; run `npm run build` first');
    process.exit(1);
  }
  throw err;
});
