import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SERVE_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { ROOT } from '../setup/python-env.js';

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/** Every way to start a server passes the same Node flags (core/garbage.ts needs them together). */
describe("the server's Node flags", () => {
  it('are the same in the tierflight command, npm start, the Docker image and the README', () => {
    const flags = SERVE_NODE_FLAGS.join(' ');
    expect(read('src/cli/main.ts').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${flags}`);
    expect((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start).toBe(
      `node ${flags} dist/cli/main.js serve`,
    );
    expect(read('Dockerfile')).toContain(
      `ENTRYPOINT ${JSON.stringify(['node', ...SERVE_NODE_FLAGS, 'dist/cli/main.js'])}`.replaceAll(',', ', '),
    );
    expect(read('README.md')).toContain(`\`node ${flags} dist/cli/main.js serve\``);
  });
});
