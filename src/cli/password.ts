import { createInterface } from 'node:readline/promises';
import { Writable } from 'node:stream';

/**
 * The password for `tierflight hash-password`: $TIERFLIGHT_PASSWORD, else typed at a
 * terminal twice without echo, else the first line of standard input.
 */
export async function readPassword(): Promise<string> {
  const fromEnv = process.env.TIERFLIGHT_PASSWORD;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (process.stdin.isTTY) {
    const first = await ask('Password: ');
    const again = await ask('Again: ');
    if (first !== again) throw new Error('the two passwords differ');
    return first;
  }
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text.split(/\r?\n/)[0] ?? '';
}

async function ask(prompt: string): Promise<string> {
  process.stderr.write(prompt);
  // Typed characters are not echoed.
  const muted = new Writable({ write: (_chunk, _encoding, done) => done() });
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  try {
    return await rl.question('');
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}
