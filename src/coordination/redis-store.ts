import type { Redis as RedisClient } from 'ioredis';
import {
  ReservationExistsError,
  ReservationNotClaimableError,
  ReservationNotFoundError,
  ReservationStoreError,
  type LandingNotice,
  type Reservation,
  type ReservationStore,
} from './reservation-store.js';

/** How long an expired reservation's key stays (create must still see it meanwhile), then Redis drops it. */
const RETAIN_EXPIRED_MS = 60 * 60 * 1000;

/**
 * Every operation is one Lua script, so it is atomic on the Redis server, and every one
 * reads the time from the server (`TIME`): all nodes sharing the store measure expiry on
 * that one clock, so clock skew between Tierflight nodes can neither shorten nor stretch
 * a reservation. A reservation is a hash {owner, expiresAt} under `<prefix>r:<path>`,
 * kept an hour past its expiry (PEXPIREAT), and a member of the sorted set
 * `<prefix>live` scored by its expiry (for counting live ones).
 *
 * Scripts return arrays: {status, owner, expiresAt}; status 1 done, 0 refused (exists /
 * not claimable, with the holder), -1 not found.
 */
const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;
const WRITE = `
local exp = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'expiresAt', exp)
redis.call('PEXPIREAT', KEYS[1], exp + tonumber(ARGV[3]))
redis.call('ZADD', KEYS[2], exp, KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return {1, ARGV[1], exp}`;

const SCRIPTS = {
  // KEYS: reservation, live set. ARGV: owner, ttlMs, retainMs
  tfCreate: `${NOW}
if redis.call('EXISTS', KEYS[1]) == 1 then
  local r = redis.call('HMGET', KEYS[1], 'owner', 'expiresAt')
  return {0, r[1], tonumber(r[2])}
end
${WRITE}`,
  tfUpdate: `${NOW}
local r = redis.call('HMGET', KEYS[1], 'owner', 'expiresAt')
if not r[1] then return {-1} end
if tonumber(r[2]) > now and r[1] ~= ARGV[1] then return {0, r[1], tonumber(r[2])} end
${WRITE}`,
  // KEYS: reservation. ARGV: none
  tfGet: `local r = redis.call('HMGET', KEYS[1], 'owner', 'expiresAt')
if not r[1] then return {-1} end
return {1, r[1], tonumber(r[2])}`,
  // KEYS: reservation, live set. ARGV: owner or ''
  tfDelete: `${NOW}
local r = redis.call('HMGET', KEYS[1], 'owner', 'expiresAt')
if not r[1] then return {-1} end
if ARGV[1] ~= '' and r[1] ~= ARGV[1] and tonumber(r[2]) > now then return {0, r[1], tonumber(r[2])} end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], KEYS[1])
return {1, r[1], tonumber(r[2])}`,
  // KEYS: live set
  tfCount: `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])`,
  tfNow: `${NOW} return now`,
} as const;

type Reply = [number, string?, number?];
type Scripted = {
  [K in keyof typeof SCRIPTS]: (
    ...args: (string | number)[]
  ) => Promise<K extends 'tfCount' | 'tfNow' ? number : Reply>;
};

/** Reservations in Redis (`reservations.store.type: redis`), shared by every node that points at it. */
export class RedisReservationStore implements ReservationStore {
  readonly type = 'redis';
  /** The connection that listens for notices (a subscribed Redis connection does nothing else). */
  private subscriber: RedisClient | undefined;

  private constructor(
    private readonly redis: RedisClient & Scripted,
    private readonly prefix: string,
    private readonly where: string,
    /** Why the first connection failed, if it did: calls fail until Redis answers (reconnects go on). */
    readonly startError: string | undefined,
  ) {}

  /**
   * Connects and registers the scripts. A Redis that cannot be reached does not fail this:
   * the store comes back with `startError` set, its calls fail with ReservationStoreError
   * (callers answer UNAVAILABLE) and the client keeps reconnecting, so a node starts and
   * serves flights while Redis is down and coordinates again once it is back.
   */
  static async connect(url: string, prefix: string): Promise<RedisReservationStore> {
    const { Redis } = await import('ioredis');
    const redis = new Redis(url, {
      lazyConnect: true,
      connectTimeout: 5_000,
      // A Redis that hangs (paused, overloaded) fails the call instead of holding it forever.
      commandTimeout: 2_000,
      // A call while Redis is down fails after one reconnect attempt instead of queueing forever.
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(times * 200, 2_000),
    });
    for (const [name, lua] of Object.entries(SCRIPTS)) {
      redis.defineCommand(name, { numberOfKeys: name === 'tfCount' ? 1 : name === 'tfNow' ? 0 : 2, lua });
    }
    redis.on('error', () => undefined); // reported by the calls that fail
    const where = redactUrl(url);
    const startError = await redis.connect().then(
      () => undefined,
      (err: unknown) => `cannot reach Redis at ${where}: ${(err as Error).message}`,
    );
    return new RedisReservationStore(redis as RedisClient & Scripted, prefix, where, startError);
  }

  now(): Promise<number> {
    return this.call(() => this.redis.tfNow());
  }

  async create(key: string, owner: string, ttlMs: number): Promise<Reservation> {
    const r = await this.call(() =>
      this.redis.tfCreate(this.key(key), this.live, owner, Math.round(ttlMs), RETAIN_EXPIRED_MS),
    );
    if (r[0] === 0) throw new ReservationExistsError(key);
    return this.reservation(key, r);
  }

  async updateIfExpiredOrOwned(key: string, owner: string, ttlMs: number): Promise<Reservation> {
    const r = await this.call(() =>
      this.redis.tfUpdate(this.key(key), this.live, owner, Math.round(ttlMs), RETAIN_EXPIRED_MS),
    );
    if (r[0] === -1) throw new ReservationNotFoundError(key);
    if (r[0] === 0) throw new ReservationNotClaimableError(key, this.reservation(key, r));
    return this.reservation(key, r);
  }

  async get(key: string): Promise<Reservation> {
    const r = await this.call(() => this.redis.tfGet(this.key(key), this.live));
    if (r[0] === -1) throw new ReservationNotFoundError(key);
    return this.reservation(key, r);
  }

  async delete(key: string, owner?: string): Promise<boolean> {
    const r = await this.call(() => this.redis.tfDelete(this.key(key), this.live, owner ?? ''));
    return r[0] === 1;
  }

  countLive(): Promise<number> {
    return this.call(() => this.redis.tfCount(this.live));
  }

  async notify(notice: LandingNotice): Promise<void> {
    await this.call(() => this.redis.publish(this.channel, JSON.stringify(notice)));
  }

  /** Subscribes (once per store) to the notices of every node using this Redis and key prefix. */
  async onNotice(listener: (notice: LandingNotice) => void): Promise<void> {
    const sub = this.redis.duplicate();
    this.subscriber = sub;
    sub.on('error', () => undefined); // it reconnects and resubscribes by itself
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      try {
        const notice = JSON.parse(message) as LandingNotice;
        if (typeof notice.path === 'string' && (notice.kind === 'landed' || notice.kind === 'released'))
          listener(notice);
      } catch {
        // not ours
      }
    });
    // Redis down now: subscribed when it is back (and again after every reconnect).
    sub.on('ready', () => void sub.subscribe(this.channel).catch(() => undefined));
    await sub.subscribe(this.channel).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private get channel(): string {
    return `${this.prefix}notices`;
  }

  private get live(): string {
    return `${this.prefix}live`;
  }

  private key(path: string): string {
    return `${this.prefix}r:${path}`;
  }

  private reservation(key: string, r: Reply): Reservation {
    return { key, owner: r[1] as string, expiresAt: Number(r[2]) };
  }

  private async call<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      throw new ReservationStoreError(`Redis at ${this.where}: ${(err as Error).message}`);
    }
  }
}

/** A Redis URL without its password, for messages. */
function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
