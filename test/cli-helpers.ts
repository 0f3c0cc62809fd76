import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../bin/fanflow.js', import.meta.url));

export function fanflow(args: string[], cwd?: string): { code: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, FANFLOW_LANG: 'en' }, maxBuffer: 256 << 20 });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}
