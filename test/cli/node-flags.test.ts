import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SERVE_ENV, SERVE_ENV_WORDS, SERVE_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { ROOT } from '../setup/python-env.js';

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/** Every way to start a server passes the same Node flags (core/garbage.ts needs them together). */
describe("the server's Node flags", () => {
  it('are the same in the tierflight command, npm start, the Docker image and the README', () => {
    const flags = SERVE_NODE_FLAGS.join(' ');
    expect(read('src/cli/main.ts').split('\n')[0]).toBe(`#!/usr/bin/env -S ${SERVE_ENV_WORDS} node ${flags}`);
    expect((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start).toBe(
      `${SERVE_ENV_WORDS} node ${flags} dist/cli/main.js serve`,
    );
    for (const [name, value] of Object.entries(SERVE_ENV))
      expect(read('Dockerfile')).toContain(`ENV ${name}=${value}\n`);
    expect(read('Dockerfile')).toContain(
      `ENTRYPOINT ${JSON.stringify(['node', ...SERVE_NODE_FLAGS, 'dist/cli/main.js'])}`.replaceAll(',', ', '),
    );
    expect(read('README.md')).toContain(`\`${SERVE_ENV_WORDS} node ${flags} dist/cli/main.js serve\``);
  });

  it('the shebang line starts Node with the environment and the flags', () => {
    // What the kernel runs for `tierflight …`: env with the shebang's one argument, then the script.
    const shebang = read('src/cli/main.ts').split('\n')[0]!.slice('#!'.length).split(' ');
    const [envPath, ...rest] = shebang;
    const out = execFileSync(
      envPath!,
      [
        rest.join(' '),
        '-e',
        'console.log(JSON.stringify([process.env.MALLOC_MMAP_THRESHOLD_, process.execArgv.slice(0, -2), typeof gc]))',
      ],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(out)).toEqual([SERVE_ENV.MALLOC_MMAP_THRESHOLD_, [...SERVE_NODE_FLAGS], 'function']);
  });
});
