// Embeds src/core/default-program.yaml as a string module so the pure core needs no file access.
import { readFileSync, writeFileSync } from 'node:fs';
const source = new URL('../src/core/default-program.yaml', import.meta.url);
const target = new URL('../src/core/default-program-text.ts', import.meta.url);
const text = readFileSync(source, 'utf8');
const body = `// Generated from default-program.yaml by scripts/embed-default-program.mjs; do not edit.\nconst text: string = ${JSON.stringify(text)};\nexport default text;\n`;
let current = '';
try { current = readFileSync(target, 'utf8'); } catch {}
if (current !== body) writeFileSync(target, body);
