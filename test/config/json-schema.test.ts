import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configJsonSchema } from '../../src/config/json-schema.js';
import { ROOT } from '../setup/python-env.js';

describe('the published JSON Schema of the config file', () => {
  it('is config/tierflight.schema.json, byte for byte what `tierflight schema` prints', () => {
    const committed = readFileSync(path.join(ROOT, 'config/tierflight.schema.json'), 'utf8');
    // If this fails, regenerate: npx tierflight schema > config/tierflight.schema.json
    const printed = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'schema'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).stdout;
    expect(printed).toBe(committed);
    expect(JSON.parse(committed)).toEqual(configJsonSchema());
  });

  it('names every DESIGN.md key and refuses unknown ones', () => {
    const schema = configJsonSchema() as {
      properties: Record<string, { properties?: Record<string, unknown>; additionalProperties?: boolean }>;
      additionalProperties: boolean;
    };
    expect(Object.keys(schema.properties).sort()).toEqual(
      [
        '$schema',
        'auth',
        'cluster',
        'durableStores',
        'limitPolicies',
        'reservations',
        'server',
        'storageClasses',
        'storageTypes',
      ].sort(),
    );
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties.reservations?.properties ?? {}).sort()).toEqual([
      'graceMultiplier',
      'maxHeartbeat',
      'maxPerUser',
      'maxWaiters',
      'maxWaitersPerUser',
      'store',
    ]);
    // DESIGN §9's keys too: ticketGrace, spool, sessionMax.
    expect(Object.keys(schema.properties.server?.properties ?? {})).toEqual(
      expect.arrayContaining(['listen', 'advertise', 'metrics', 'maxBatchBytes', 'ticketGrace', 'spool']),
    );
    expect(Object.keys(schema.properties.auth?.properties ?? {})).toEqual(expect.arrayContaining(['sessionMax']));
    expect(Object.keys(schema.properties.storageTypes?.properties ?? {}).sort()).toEqual([
      'disk',
      'disk_mapped',
      'memory',
    ]);
    // DESIGN §8's keys.
    expect(Object.keys(schema.properties.cluster?.properties ?? {}).sort()).toEqual([
      'discover',
      'members',
      'probeEvery',
      'self',
    ]);
  });

  it('compiles with ajv in strict mode and checks sizes and durations as editors would', () => {
    const schema = JSON.parse(readFileSync(path.join(ROOT, 'config/tierflight.schema.json'), 'utf8')) as object;
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    addFormats.default(ajv); // the "uri" format of store endpoints
    const validate = ajv.compile(schema);
    for (const file of ['config/default.yaml', 'config/example.yaml', 'config/docker.yaml']) {
      const doc = parse(readFileSync(path.join(ROOT, file), 'utf8')) as unknown;
      expect({ file, errors: validate(doc) ? null : validate.errors }).toEqual({ file, errors: null });
    }
    const bad = { storageTypes: { memory: { capacity: '2 gigs' } }, storageClasses: [] };
    expect(validate(bad)).toBe(false);
    expect(validate.errors?.some((e) => e.instancePath === '/storageTypes/memory/capacity')).toBe(true);
    const badDuration = {
      storageTypes: { memory: { capacity: '1GiB' } },
      storageClasses: [{ name: 'a', prefix: '', ttl: 'a week', tiers: [{ storage: 'memory' }] }],
    };
    expect(validate(badDuration)).toBe(false);
  });

  it('is referenced from the default config for editors', () => {
    expect(readFileSync(path.join(ROOT, 'config/default.yaml'), 'utf8')).toMatch(
      /^# yaml-language-server: \$schema=\.\/tierflight\.schema\.json$/m,
    );
  });
});
