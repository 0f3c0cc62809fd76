#!/usr/bin/env -S node --max-semi-space-size=96
// A larger young generation (the flag above; V8 reads it only when the process starts): imports
// and replays allocate many short-lived objects, and with the default one a tenth to a sixth of
// their time went to garbage collection. `node bin/fanflow.js` runs without it, only slower.
const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(process.argv);
