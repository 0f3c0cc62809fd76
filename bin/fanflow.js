#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';

// A larger young generation: imports allocate many short-lived objects.
setFlagsFromString('--max-semi-space-size=64');
const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(process.argv);
