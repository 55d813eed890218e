import { configErrors } from '../helpers/config.js';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';

/** `cluster` (DESIGN §8) is checked as a whole: who the members are, `self`, a shared reservation store, replicas. */
describe('cluster configuration', () => {
  const parse = (yaml: string) => configErrors(yaml, 'c.yaml');
  const classes = (replicas = 1) => `storageTypes:
  memory: { capacity: 1MiB }
storageClasses:
  - { name: d, prefix: "", replicas: ${replicas}, tiers: [{ storage: memory }] }
`;
  const redis = `reservations:\n  store: { type: redis, url: "redis://127.0.0.1:6379" }\n`;

  it('accepts static members with a shared Redis, and DNS discovery', () => {
    expect(
      parse(`${classes(2)}${redis}cluster:
  self: a
  members:
    - { name: a, location: grpc+tcp://10.0.0.1:8815 }
    - { name: b, location: "grpc+tls://node-b.local:8815" }
`),
    ).toBe('');
    expect(
      parse(`${classes()}${redis}cluster:
  self: 10.0.0.7:8815
  discover: { dns: tierflight.svc.cluster.local, port: 8815, every: 10s }
  probeEvery: 1s
`),
    ).toBe('');
  });

  it('reads ${NAME} inside a value from the environment, as a pod names itself by its IP', () => {
    process.env.TF_TEST_POD_IP = '10.1.2.3';
    const config = parseConfigText(
      `${classes()}${redis}server:
  advertise: grpc+tcp://\${TF_TEST_POD_IP}:8815
cluster:
  self: \${TF_TEST_POD_IP}:8815
  discover: { dns: tierflight-headless.default.svc.cluster.local, port: 8815 }
`,
      'c.yaml',
    );
    expect(config.cluster?.self).toBe('10.1.2.3:8815');
    expect(config.server.advertise).toBe('grpc+tcp://10.1.2.3:8815');
    expect(parse(`${classes()}${redis}cluster:\n  self: \${TF_TEST_UNSET_IP}:1\n  discover: { dns: x }\n`)).toMatch(
      /c\.yaml:\d+:\d+: cluster\.self: environment variable TF_TEST_UNSET_IP is not set/,
    );
  });

  it('refuses a self that is not a member, duplicates, bad locations, both or neither member source, at their line', () => {
    const text = parse(`${classes()}${redis}cluster:
  self: z
  members:
    - { name: a, location: grpc+tcp://10.0.0.1:8815 }
    - { name: a, location: grpc+tcp://10.0.0.1:8815 }
    - { name: c, location: http://10.0.0.3 }
`);
    expect(text).toMatch(/c\.yaml:12:\d+: cluster\.members\[2\]\.location: a location like grpc\+tcp:/);
    const semantic = parse(`${classes()}${redis}cluster:
  self: z
  members:
    - { name: a, location: grpc+tcp://10.0.0.1:8815 }
    - { name: a, location: grpc+tcp://10.0.0.1:8815 }
`);
    expect(semantic).toMatch(/c\.yaml:\d+:\d+: cluster\.self: self "z" is not one of cluster\.members/);
    expect(semantic).toMatch(/c\.yaml:11:\d+: cluster\.members\[1\]\.name: duplicate member "a"/);
    expect(semantic).toMatch(/cluster\.members\[1\]\.location: duplicate member location/);
    expect(parse(`${classes()}${redis}cluster:\n  self: a\n`)).toMatch(/exactly one of members .* or discover/);
  });

  it('refuses several nodes on memory reservation stores, and more replicas than members', () => {
    const members = `cluster:
  self: a
  members:
    - { name: a, location: grpc+tcp://10.0.0.1:8815 }
    - { name: b, location: grpc+tcp://10.0.0.2:8815 }
`;
    expect(parse(`${classes()}${members}`)).toMatch(/needs a shared reservation store: set reservations\.store/);
    expect(parse(`${classes(3)}${redis}${members}`)).toMatch(
      /storageClasses\[0\]\.replicas: replicas 3 is more than the cluster's 2 members/,
    );
  });
});
