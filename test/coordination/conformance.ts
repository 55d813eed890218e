import { describe, expect, it } from 'vitest';
import {
  ReservationExistsError,
  ReservationNotClaimableError,
  ReservationNotFoundError,
  type ReservationStore,
} from '../../src/coordination/reservation-store.js';

/**
 * The reservation store contract (src/coordination/reservation-store.ts), run against
 * every store on real time: create refuses an existing key even when expired, the
 * conditional update is atomic (of many concurrent claimers exactly one wins), get and
 * update tell a missing key apart, delete is owner-checked, times are whole milliseconds
 * on the store's clock and a reservation is live while now < expiresAt.
 */
export function reservationStoreConformance(name: string, open: () => Promise<ReservationStore>): void {
  describe(`reservation store contract: ${name}`, () => {
    let n = 0;
    const fresh = async (): Promise<{ store: ReservationStore; key: string }> => ({
      store: await open(),
      key: `conformance/${name}/${Date.now()}-${n++}`,
    });
    const kind = (p: Promise<unknown>): Promise<string> =>
      p.then(
        () => 'ok',
        (e: unknown) => (e as Error).constructor.name,
      );
    /** Waits until the store's own clock reaches `at`. */
    const until = async (store: ReservationStore, at: number): Promise<void> => {
      for (let now = await store.now(); now < at; now = await store.now()) {
        await new Promise((r) => setTimeout(r, Math.min(50, at - now)));
      }
    };

    it('creates once: a second create of the key fails with exists, and get returns the same reservation', async () => {
      const { store, key } = await fresh();
      const before = await store.now();
      const r = await store.create(key, 'alice', 60_000);
      expect(r.owner).toBe('alice');
      expect(Number.isInteger(r.expiresAt)).toBe(true);
      expect(r.expiresAt - before).toBeGreaterThanOrEqual(60_000);
      expect(r.expiresAt - before).toBeLessThan(61_000);
      await expect(store.create(key, 'bob', 60_000)).rejects.toBeInstanceOf(ReservationExistsError);
      await expect(store.create(key, 'alice', 60_000)).rejects.toBeInstanceOf(ReservationExistsError);
      expect(await store.get(key)).toEqual({ key, owner: 'alice', expiresAt: r.expiresAt });
      await store.close();
    });

    it('tells a missing key apart: get and update fail with not found, delete answers false', async () => {
      const { store, key } = await fresh();
      await expect(store.get(key)).rejects.toBeInstanceOf(ReservationNotFoundError);
      await expect(store.updateIfExpiredOrOwned(key, 'alice', 1000)).rejects.toBeInstanceOf(ReservationNotFoundError);
      expect(await store.delete(key)).toBe(false);
      expect(await store.delete(key, 'alice')).toBe(false);
      await store.close();
    });

    it('updates only an own or expired reservation; create still refuses the expired key', async () => {
      const { store, key } = await fresh();
      const first = await store.create(key, 'alice', 400);
      const held = await store.updateIfExpiredOrOwned(key, 'bob', 60_000).catch((e: unknown) => e);
      expect(held).toBeInstanceOf(ReservationNotClaimableError);
      expect((held as ReservationNotClaimableError).holder).toEqual({
        key,
        owner: 'alice',
        expiresAt: first.expiresAt,
      });
      const extended = await store.updateIfExpiredOrOwned(key, 'alice', 800);
      expect(extended.owner).toBe('alice');
      expect(extended.expiresAt).toBeGreaterThan(first.expiresAt);
      await until(store, extended.expiresAt);
      // Expired: create still sees it, update lets another owner take it over.
      await expect(store.create(key, 'bob', 60_000)).rejects.toBeInstanceOf(ReservationExistsError);
      const taken = await store.updateIfExpiredOrOwned(key, 'bob', 60_000);
      expect(taken.owner).toBe('bob');
      expect((await store.get(key)).owner).toBe('bob');
      await store.close();
    });

    it('is live right up to expiresAt and claimable from then on (store clock, whole milliseconds)', async () => {
      const { store, key } = await fresh();
      const r = await store.create(key, 'alice', 300);
      // Just before expiry (by the store's clock) it is still alice's.
      if ((await store.now()) < r.expiresAt - 100) {
        expect(await kind(store.updateIfExpiredOrOwned(key, 'bob', 1000))).toBe('ReservationNotClaimableError');
      }
      await until(store, r.expiresAt);
      expect((await store.updateIfExpiredOrOwned(key, 'bob', 1000)).owner).toBe('bob');
      await store.close();
    });

    it('deletes an own or expired reservation, never another owner’s live one', async () => {
      const { store, key } = await fresh();
      await store.create(key, 'alice', 60_000);
      expect(await store.delete(key, 'bob')).toBe(false);
      expect((await store.get(key)).owner).toBe('alice');
      expect(await store.delete(key, 'alice')).toBe(true);
      await expect(store.get(key)).rejects.toBeInstanceOf(ReservationNotFoundError);
      const short = await store.create(key, 'carol', 200);
      await until(store, short.expiresAt);
      expect(await store.delete(key, 'bob')).toBe(true);
      await store.create(key, 'dave', 60_000);
      expect(await store.delete(key)).toBe(true);
      await store.close();
    });

    it('lets exactly one of many concurrent claimers win, for a new key and for an expired one', async () => {
      const { store, key } = await fresh();
      const owners = Array.from({ length: 24 }, (_, i) => `owner-${i}`);
      const created = await Promise.all(owners.map((o) => kind(store.create(key, o, 300))));
      expect(created.filter((k) => k === 'ok')).toHaveLength(1);
      expect(created.filter((k) => k === 'ReservationExistsError')).toHaveLength(owners.length - 1);
      await until(store, (await store.get(key)).expiresAt);
      const claimed = await Promise.all(
        owners.map((o) => kind(store.updateIfExpiredOrOwned(key, `${o}-again`, 60_000))),
      );
      expect(claimed.filter((k) => k === 'ok')).toHaveLength(1);
      expect(claimed.filter((k) => k === 'ReservationNotClaimableError')).toHaveLength(owners.length - 1);
      await store.close();
    });

    it('counts live reservations only', async () => {
      const { store, key } = await fresh();
      const base = await store.countLive();
      await store.create(`${key}/a`, 'alice', 60_000);
      const short = await store.create(`${key}/b`, 'alice', 200);
      expect(await store.countLive()).toBe(base + 2);
      await until(store, short.expiresAt);
      expect(await store.countLive()).toBe(base + 1);
      await store.delete(`${key}/a`);
      expect(await store.countLive()).toBe(base);
      await store.close();
    });
  });
}
