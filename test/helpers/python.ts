import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { PYTHON, ROOT } from '../setup/python-env.js';

const CLIENT = path.join(ROOT, 'test/py/flight_client.py');

/**
 * Runs one flight_client.py subcommand against a server and returns its JSON answer. A
 * client that dies of a native crash in pyarrow's own gRPC (SIGABRT or SIGSEGV: seen as a
 * "double free" in its TLS transport when a server refuses the handshake) is run once more;
 * a second crash fails the test.
 */
export async function runPyClient<T = unknown>(command: string, location: string, args: string[] = []): Promise<T> {
  try {
    return await runPyClientOnce<T>(command, location, args);
  } catch (err) {
    if (!(err instanceof NativeCrash)) throw err;
    process.stderr.write(`flight_client.py ${command} crashed in pyarrow (${err.message}); running it again\n`);
    return runPyClientOnce<T>(command, location, args);
  }
}

class NativeCrash extends Error {}

function runPyClientOnce<T>(command: string, location: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(
      PYTHON,
      [CLIENT, command, location, ...args],
      { maxBuffer: 64 * 1024 * 1024, timeout: 300_000 },
      (err, stdout, stderr) => {
        if (err) {
          const signal = (err as { signal?: string | null }).signal;
          if (signal === 'SIGABRT' || signal === 'SIGSEGV') {
            reject(new NativeCrash(`${signal}: ${stderr.trim().split('\n').at(-1) ?? ''}`));
            return;
          }
          reject(new Error(`flight_client.py ${command} failed: ${err.message}\n${stderr}`));
          return;
        }
        try {
          resolve(JSON.parse(stdout) as T);
        } catch {
          reject(new Error(`flight_client.py ${command} printed no JSON:\n${stdout}\n${stderr}`));
        }
      },
    );
  });
}

/** Starts a subcommand and resolves once it printed its first line (for kill-mid-stream tests). */
export function spawnPyClient(
  command: string,
  location: string,
  args: string[] = [],
): Promise<{ child: ChildProcess; first: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [CLIENT, command, location, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, first: out.slice(0, nl) });
    });
    child.on('exit', (code) => reject(new Error(`flight_client.py ${command} exited ${code} early:\n${out}\n${err}`)));
  });
}
