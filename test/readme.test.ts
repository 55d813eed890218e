import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { startNode } from '../src/node/start.js';
import { hashPassword } from '../src/auth/passwords.js';
import { loadConfigFile } from '../src/config/load.js';
import { silentLogger } from '../src/core/log.js';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, MEMORY_ONLY, startTestServer, type TestServer } from './helpers/server.js';
import { runPyClient } from './helpers/python.js';
import { PYTHON, ROOT } from './setup/python-env.js';

/**
 * The README is for users who have only the clone: it must name every metric family the
 * server exposes (and no other), every CLI command, and link nothing outside the repository.
 */
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const DASHBOARD = readFileSync(path.join(ROOT, 'config/grafana/tierflight-dashboard.json'), 'utf8');

describe('README', () => {
  let server: TestServer;
  let families: string[];
  beforeAll(async () => {
    const port = await freePort();
    server = await startTestServer(MEMORY_ONLY(), { server: `  metrics: 127.0.0.1:${port}\n` });
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    families = [...text.matchAll(/^# TYPE (tierflight_\w+) /gm)].map((m) => m[1] as string);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('names every Tierflight metric family the server exposes, and none it does not', () => {
    expect(families.length).toBeGreaterThan(30);
    expect(families.filter((f) => !README.includes(`\`${f}\``))).toEqual([]);
    const named = new Set([...README.matchAll(/`(tierflight_\w+)`/g)].map((m) => m[1]));
    expect([...named].filter((f) => !families.includes(f as string))).toEqual([]);
  });

  it('shows every metric family on the Grafana dashboard, as it says', () => {
    expect(families.filter((f) => !DASHBOARD.includes(f))).toEqual([]);
  });

  it('documents every command of the tierflight CLI', () => {
    const help = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), '--help'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).stdout;
    const commands = [...help.slice(help.indexOf('Commands:')).matchAll(/^ {2}(\w[\w-]*)/gm)]
      .map((m) => m[1] as string)
      .filter((c) => c !== 'help');
    expect(commands).toEqual(expect.arrayContaining(['serve', 'validate', 'route', 'schema']));
    expect(commands.filter((c) => !README.includes(`tierflight ${c}`))).toEqual([]);
    expect(README).toContain('tierflight --version');
  });

  it('shows only YAML that validates as written (with the environment variables the text names)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tierflight-readme-yaml-'));
    const env = {
      TIERFLIGHT_TOKEN_SECRET: 'a-readme-token-secret-of-at-least-32-characters',
      TIERFLIGHT_METRICS_TOKEN: 'a-readme-metrics-token',
      POD_IP: '10.1.2.3',
      REPORTING_PASSWORD_HASH:
        '$argon2id$v=19$m=19456,t=2,p=1$8IShOFxy28XuPGV6CmcAtg$HxjevWgDYFORI5VWPRvj/6QrA+GMsadAUmxn71JyShc',
    };
    Object.assign(process.env, env);
    try {
      // The files the Security walk-through's commands create, where its config looks for them.
      mkdirSync(path.join(dir, 'tls'));
      for (const f of ['ca.pem', 'server.pem', 'server.key']) writeFileSync(path.join(dir, 'tls', f), 'PEM\n');
      const blocks = [...README.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => ({
        line: README.slice(0, m.index).split('\n').length,
        text: m[1] as string,
      }));
      expect(blocks.length).toBeGreaterThan(5);
      const problems = blocks.flatMap(({ line, text }) => {
        const file = path.join(dir, `block-${line}.yaml`);
        writeFileSync(file, text);
        try {
          loadConfigFile(file);
          return [];
        } catch (err) {
          return [`README.md line ${line}: ${(err as Error).message}`];
        }
      });
      expect(problems).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('shows only tierflight command lines whose commands and options the CLI has', () => {
    const helpOf = new Map<string, string>();
    const help = (words: string[]): string => {
      const key = words.join(' ');
      if (!helpOf.has(key)) {
        const out = spawnSync(
          process.execPath,
          ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...words, '--help'],
          { cwd: ROOT, encoding: 'utf8' },
        );
        helpOf.set(key, out.stdout);
      }
      return helpOf.get(key) as string;
    };
    const subcommands = (text: string): string[] =>
      [...text.slice(text.indexOf('Commands:')).matchAll(/^ {2}(\w[\w-]*)/gm)].map((m) => m[1] as string);
    // Lines that run the CLI (`tierflight COMMAND …`, not `statefulset/tierflight` or a
    // Secret named tierflight), from where it is run.
    const lines = [...README.matchAll(/```sh\n([\s\S]*?)```/g)]
      .flatMap((m) => (m[1] as string).split('\n'))
      .map((l) => l.replace(/#.*$/, ''))
      .filter((l) => !l.includes('$('))
      .flatMap((l) => {
        const at = [...l.matchAll(/(?:^|[\s/])tierflight (?=[a-zA-Z-])/g)].at(-1);
        return at === undefined ? [] : [l.slice((at.index ?? 0) + at[0].indexOf('tierflight'))];
      });
    expect(lines.length).toBeGreaterThan(10);
    const problems: string[] = [];
    for (const line of lines) {
      const words = line
        .slice(line.indexOf('tierflight') + 'tierflight'.length)
        .trim()
        .split(/\s+/)
        .filter(Boolean);
      const chain: string[] = [];
      for (const w of words) {
        if (w.startsWith('-')) continue;
        if (subcommands(help(chain)).includes(w)) chain.push(w);
        else if (chain.length === 0 && w === w.toUpperCase())
          break; // a placeholder such as COMMAND
        else if (chain.length === 0) problems.push(`${line.trim()}: no command "${w}"`);
      }
      const known = [help([]), ...chain.map((_, i) => help(chain.slice(0, i + 1)))].join('\n');
      for (const flag of words.filter((w) => /^--[a-z]/.test(w)).map((w) => w.replace(/[=[\]].*$/, ''))) {
        if (!known.includes(flag))
          problems.push(`${line.trim()}: "${flag}" is not an option of tierflight ${chain.join(' ')}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('cites only documents the repository has', () => {
    expect(README).not.toMatch(/DESIGN/);
    expect(readFileSync(path.join(ROOT, 'ARCHITECTURE.md'), 'utf8')).not.toMatch(/DESIGN/);
  });

  /** The first python block of a README section, pointed at the test server, and a runner that prints `tail` after it. */
  const example = (heading: string, mustContain: string) => {
    const section = README.slice(README.indexOf(heading));
    const code = /```python\n([\s\S]*?)```/.exec(section)?.[1];
    expect(code).toContain(mustContain);
    const script = (code as string).replace('grpc://localhost:8815', server.location);
    return (tail: string): Promise<string> =>
      new Promise((resolve, reject) => {
        execFile(PYTHON, ['-c', `${script}\n${tail}`], { timeout: 60_000 }, (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()),
        );
      });
  };

  it('shows a reserve → compute → put / wait example that works as written', async () => {
    const run = example('## Cache-fill reservations', 'x-tierflight-owner');
    // Two workers at once, then a third when the flight exists: every one ends with the table.
    const rows = 'print(table.num_rows)';
    expect(await Promise.all([run(rows), run(rows)])).toEqual(['3', '3']);
    expect(await run(rows)).toBe('3');
    const info = await runPyClient<Record<string, unknown>>('info-metadata', server.location, [
      '--path',
      'cache/reports/2026-11',
    ]);
    expect(info.owner).toMatch(/^.+-\d+$/);
  });

  it('shows a partitioned dataset example (parallel writers, parallel readers) that works as written', async () => {
    const run = example('## Partitioned datasets', 'x-tierflight-partition');
    expect(await run('print(table.num_rows, len(info.endpoints))')).toBe('8000 8');
  });

  it('shows a column projection example that works as written', async () => {
    const run = example('## Column projection', 'columns');
    expect(await run('print(projected.column_names)')).toBe("['score', 'id']");
  });

  it('shows a security example (openssl, hash-password, config, pyarrow) that works as written', async () => {
    const section = README.slice(README.indexOf('## Security'), README.indexOf('## Configuration reference'));
    const block = (lang: string) => new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section)?.[1] ?? '';
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tierflight-readme-security-'));
    try {
      // The shell steps, but the password typed at the prompt comes from the test.
      const shell = block('sh')
        .split('\n')
        .filter((line) => !line.startsWith('npx tierflight hash-password') && !line.startsWith('export '))
        .join('\n');
      expect(block('sh')).toContain('npx tierflight hash-password');
      execFileSync('bash', ['-euc', shell], { cwd: dir, stdio: 'pipe' });
      const password = 'readme-example-password';
      const port = await freePort();
      const yaml = block('yaml')
        .replaceAll('8815', String(port))
        .replace(/passwordHash: .*$/m, `passwordHash: ${JSON.stringify(await hashPassword(password))}`);
      writeFileSync(path.join(dir, 'tierflight.yaml'), yaml);
      process.env.TIERFLIGHT_TOKEN_SECRET = execFileSync('openssl', ['rand', '-base64', '48'], {
        encoding: 'utf8',
      }).trim();
      const app = await startNode(loadConfigFile(path.join(dir, 'tierflight.yaml')).config, silentLogger);
      try {
        const script = block('python')
          .replaceAll('8815', String(port))
          .replace('"the password"', JSON.stringify(password));
        // Not execFileSync: the server runs in this process and must keep answering.
        const out = await new Promise<string>((resolve, reject) =>
          execFile(PYTHON, ['-c', script], { cwd: dir, timeout: 60_000 }, (err, stdout, stderr) =>
            err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
          ),
        );
        expect(out).toMatch(/n: int64/);
        expect(out).toMatch(/\[\[1,2,3\]\]/);
      } finally {
        await app.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('links nothing outside the repository', () => {
    const links = [...README.matchAll(/\]\(([^)]+)\)|`(\.\.\/[^`]+)`/g)].map((m) => m[1] ?? m[2]);
    expect(links.filter((l) => l?.startsWith('../') || l?.includes('shared/'))).toEqual([]);
  });
});
