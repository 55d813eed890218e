import { configErrors } from '../helpers/config.js';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, parseConfigText } from '../../src/config/load.js';
import { parseDuration, parseSize } from '../../src/config/units.js';

const issuesOf = (text: string) => {
  try {
    parseConfigText(text, 'cfg.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected a ConfigError');
};

const VALID = `server:
  listen: 127.0.0.1:8815
storageTypes:
  memory: { capacity: 2GiB }
  disk: { path: ./data/disk, capacity: 100GiB }
durableStores:
  - { id: local, type: filesystem, path: ./data/durable }
storageClasses:
  - name: reports
    prefix: cache/reports
    durability: weak
    durableStore: local
    ttl: 7d
    tiers:
      - { storage: memory, maxFlightSize: 64MiB, uploadSpill: spill, priority: 10, evictionSpill: true, moveAfter: 30m }
      - { storage: disk, promoteAfter: { accesses: 3, within: 1m } }
  - name: root
    prefix: ""
    tiers: [{ storage: memory }]
limitPolicies:
  - name: tenants
    type: hierarchical
    classes: [reports]
    scope: ephemeral
    onLimit: evict
    levels:
      - { default: 5GiB, overrides: { tenant1: 10GiB } }
      - { overrides: { tenant1/dataSource1: 6GiB } }
`;

describe('units', () => {
  it('reads sizes and durations', () => {
    expect(parseSize('512MiB')).toBe(512 * 1024 * 1024);
    expect(parseSize('2GiB')).toBe(2 * 1024 ** 3);
    expect(parseSize('5GB')).toBe(5e9);
    expect(parseSize(1234)).toBe(1234);
    expect(parseSize('12 parsecs')).toBeUndefined();
    expect(parseSize(-1)).toBeUndefined();
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('soon')).toBeUndefined();
  });
});

describe('config validation', () => {
  it('accepts the DESIGN.md example with its key names and units', () => {
    const config = parseConfigText(VALID, '/etc/tierflight/cfg.yaml');
    expect(config.storageTypes.memory?.capacity).toBe(2 * 1024 ** 3);
    expect(config.storageTypes.disk?.path).toBe('/etc/tierflight/data/disk');
    expect(config.storageClasses[0]?.ttl).toBe(7 * 86_400_000);
    expect(config.storageClasses[0]?.tiers[0]?.moveAfter).toBe(30 * 60_000);
    expect(config.server.maxMessageSize).toBe(256 * 1024 * 1024);
  });

  it('loads the shipped default config', () => {
    const { config } = loadConfigFile('config/default.yaml');
    expect(config.server.listen).toBe('127.0.0.1:8815');
    expect(config.storageClasses.some((c) => c.prefix === '')).toBe(true);
  });

  it('reports every problem at once with file, line and column', () => {
    const text = `server:
  listen: nowhere
storageTypes:
  memory: { capacity: 2 gigs }
  tape: { capacity: 1GiB }
storageClasses:
  - name: a
    prefix: cache
    durability: strong
    tiers:
      - { storage: disk }
      - { storage: memory, uploadSpill: spill, colour: red }
`;
    const issues = issuesOf(text);
    const where = issues.map((i) => `${i.line}:${i.column} ${i.key}`);
    expect(where).toEqual(
      expect.arrayContaining([
        '2:11 server.listen',
        '4:23 storageTypes.memory.capacity',
        '5:3 storageTypes.tape',
        '12:48 storageClasses[0].tiers[1].colour',
      ]),
    );
    expect(issues.every((i) => i.file === 'cfg.yaml')).toBe(true);
    expect(issues.find((i) => i.key === 'storageTypes.memory.capacity')?.message).toMatch(/not a size/);
  });

  it('runs the cluster checks even when another section fails the schema', () => {
    const text = `storageTypes:
  memory: { capacity: lots }
storageClasses:
  - { name: a, prefix: '', tiers: [{ storage: memory }] }
cluster:
  self: c
  members:
    - { name: a, location: grpc://127.0.0.1:9001 }
    - { name: a, location: grpc://127.0.0.1:9002 }
`;
    const keys = issuesOf(text).map((i) => `${i.key}: ${i.message}`);
    expect(keys).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^storageTypes\.memory\.capacity: /),
        'cluster.self: self "c" is not one of cluster.members',
        'cluster.members[1].name: duplicate member "a"',
      ]),
    );
  });

  it('reports cross-reference problems together', () => {
    const text = `storageTypes:
  memory: { capacity: 1GiB }
  disk_mapped: { path: /tmp/tf/a, capacity: 1GiB }
durableStores:
  - { id: fs, type: filesystem, path: /tmp/tf/a/durable }
storageClasses:
  - name: a
    prefix: cache/
    durability: weak
    durableStore: s3main
    tiers:
      - { storage: disk }
      - { storage: memory, uploadSpill: spill, evictionSpill: true }
  - name: a
    prefix: cache
    tiers: [{ storage: memory }]
limitPolicies:
  - { name: p, type: standard, classes: [a, ghost], limit: 1GiB }
`;
    const messages = issuesOf(text).map((i) => `${i.line}: ${i.message}`);
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^5: directory overlaps storageTypes.disk_mapped.path/),
        expect.stringMatching(/^10: no durable store has id "s3main"/),
        expect.stringMatching(/^12: storage type "disk" is not defined/),
        expect.stringMatching(/^13: the last tier cannot spill/),
        expect.stringMatching(/^14: duplicate class name "a"/),
        expect.stringMatching(/^15: prefix "cache" is already used by class "a"/),
        expect.stringMatching(/^18: no storage class is named "ghost"/),
      ]),
    );
  });

  it('reports schema and cross-reference problems in one pass', () => {
    const issues = issuesOf(`storageTypes:
  memory: { capacity: lots }
durableStores:
  - { id: broken, type: filesystem }
storageClasses:
  - { name: a, prefix: x, durableStore: nowhere, durability: weak, tiers: [{ storage: disk }] }
  - { name: b, prefix: x, tiers: [{ storage: memory }] }
  - { name: c, prefix: y, durableStore: broken, tiers: [{ storage: memory, priority: high }] }
limitPolicies:
  - { name: p, type: standard, classes: [a, c, ghost], limit: 1GiB }
`);
    const text = issues.map((i) => `${i.line}:${i.column} ${i.key}: ${i.message}`);
    // Schema errors...
    expect(text).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^2:\d+ storageTypes\.memory\.capacity: "lots" is not a size/),
        expect.stringMatching(/^4:\d+ durableStores\[0\]\.path: required key is missing/),
        expect.stringMatching(/^8:\d+ storageClasses\[2\]\.tiers\[0\]\.priority:/),
      ]),
    );
    // ...and, in the same report, the cross-reference ones among the well-formed parts.
    expect(text).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^6:\d+ storageClasses\[0\]\.durableStore: no durable store has id "nowhere"/),
        expect.stringMatching(/^6:\d+ storageClasses\[0\]\.tiers\[0\]\.storage: storage type "disk" is not defined/),
        expect.stringMatching(/^7:\d+ storageClasses\[1\]\.prefix: prefix "x" is already used by class "a"/),
        expect.stringMatching(/^10:\d+ limitPolicies\[0\]\.classes\[2\]: no storage class is named "ghost"/),
      ]),
    );
    // Names of broken entries still count: no noise about "broken", class "c" or memory.
    expect(text.join('\n')).not.toMatch(/"broken"|named "c"|"memory" is not defined/);
  });

  it('reports YAML syntax errors with their position', () => {
    const issues = issuesOf('storageTypes:\n  memory: { capacity: 1GiB\nstorageClasses: []\n');
    expect(issues[0]?.line).toBeGreaterThan(1);
    expect(issues[0]?.message.length).toBeGreaterThan(0);
  });

  it('refuses unknown durability values and policy types by name', () => {
    const issues = issuesOf(`storageTypes: { memory: { capacity: 1GiB } }
storageClasses:
  - { name: a, prefix: "", durability: maybe, tiers: [{ storage: memory }] }
limitPolicies:
  - { name: p, type: fancy, classes: [a] }
`);
    expect(issues.map((i) => i.key)).toEqual(['storageClasses[0].durability', 'limitPolicies[0].type']);
  });

  it('names a missing file', () => {
    expect(() => loadConfigFile('/nonexistent/tierflight.yaml')).toThrow(/cannot read the config file: no such file/);
  });

  it('reports only the real error when the server section fails: no spurious certSubject one', () => {
    const out = configErrors(
      `server:
  metricsToken: short
  tls: { cert: /dev/null, key: /dev/null, clientCa: /dev/null }
storageTypes: { memory: { capacity: 1MiB } }
storageClasses: [{ name: d, prefix: "", tiers: [{ storage: memory }] }]
auth:
  tokenSecret: a-secret-of-at-least-32-characters-0123456789
  users: [{ name: ops, certSubject: CN=ops, permissions: [{ prefix: "", access: [read] }] }]
`,
      'short-token.yaml',
    );
    expect(out).toMatch(/^short-token.yaml: 1 configuration error\n/);
    expect(out).toContain('server.metricsToken: metricsToken must be at least 16 characters');
  });
});
