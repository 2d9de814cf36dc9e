/** Runs the load tool (test/bench) as a child process, for the e2e tests of the tool itself. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The compiled load tool's entry point. */
export const BENCH = fileURLToPath(new URL('../bench/main.js', import.meta.url));

export interface BenchResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the load tool (or another of its scripts); resolves with its exit code, stdout and stderr. */
export function runBench(args: string[], timeoutMs: number, script = BENCH): Promise<BenchResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    // Not a subtest of the caller's run: the tool's own output is plain.
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`bench ${args.join(' ')} did not finish within ${timeoutMs} ms:\n${stderr.slice(-3000)}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
