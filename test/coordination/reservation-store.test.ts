import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryReservationStore } from '../../src/coordination/memory-store.js';
import { RedisReservationStore } from '../../src/coordination/redis-store.js';
import { ReservationNotClaimableError, ReservationStoreError } from '../../src/coordination/reservation-store.js';
import { ManualClock, systemClock } from '../../src/core/clock.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { reservationStoreConformance } from './conformance.js';

// One memory store shared by the suite, as a server has one; closing it does nothing.
const memory = new MemoryReservationStore(systemClock);
reservationStoreConformance('memory', () => Promise.resolve(memory));

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
reservationStoreConformance('redis', () => RedisReservationStore.connect(redis.url, 'test:'));

describe('reservation stores, beyond the contract', () => {
  it('memory: expiry is exact to the millisecond on the injected clock', async () => {
    const clock = new ManualClock(1_000_000);
    const store = new MemoryReservationStore(clock);
    const r = await store.create('p', 'alice', 3000);
    expect(r.expiresAt).toBe(1_003_000);
    clock.set(1_002_999);
    await expect(store.updateIfExpiredOrOwned('p', 'bob', 10)).rejects.toBeInstanceOf(ReservationNotClaimableError);
    clock.set(1_003_000);
    expect((await store.updateIfExpiredOrOwned('p', 'bob', 10)).owner).toBe('bob');
  });

  it('redis: two stores (two nodes) on one server see one reservation; a down server fails fast', async () => {
    const a = await RedisReservationStore.connect(redis.url, 'nodes:');
    const b = await RedisReservationStore.connect(redis.url, 'nodes:');
    await a.create('shared', 'node-a', 60_000);
    expect((await b.get('shared')).owner).toBe('node-a');
    await expect(b.updateIfExpiredOrOwned('shared', 'node-b', 1000)).rejects.toBeInstanceOf(
      ReservationNotClaimableError,
    );
    redis.pause();
    try {
      const started = Date.now();
      const err = await b.get('shared').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ReservationStoreError);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      redis.resume();
    }
    await a.close();
    await b.close();
  });

  it('redis: a server that cannot be reached at start leaves a store whose calls fail fast, naming it (password hidden)', async () => {
    const store = await RedisReservationStore.connect('redis://user:secret@127.0.0.1:1/0', 'x:');
    expect(store.startError).toMatch(/cannot reach Redis at redis:\/\/user:\*\*\*@127\.0\.0\.1:1\/0/);
    const started = Date.now();
    const err = await store.get('p').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReservationStoreError);
    expect((err as Error).message).toMatch(/^Redis at redis:\/\/user:\*\*\*@127\.0\.0\.1:1\/0: /);
    expect(Date.now() - started).toBeLessThan(5_000);
    await store.close();
  });
});
