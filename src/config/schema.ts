import { z } from 'zod';
import { DURATION_PATTERN, parseDuration, parseSize, SIZE_PATTERN } from './units.js';

/**
 * The full schema of a Tierflight config file (DESIGN.md §5). The key names are fixed:
 * operators and tests rely on them. Objects are strict so a misspelt key is an error,
 * not a silently ignored setting.
 */

const size = z
  // The pattern is for editors (JSON Schema); the transform checks it with a message naming the value.
  .union([z.string().meta({ pattern: SIZE_PATTERN }), z.number().int().min(0)], {
    error: 'expected a size: bytes, or a number and a unit such as 512MiB, 2GiB, 64KiB',
  })
  .meta({ description: 'A size: bytes, or a number and a unit such as 64KiB, 512MiB, 2GiB, 5GB' })
  .transform((value, ctx) => {
    const parsed = parseSize(value);
    if (parsed === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `"${value}" is not a size; write bytes or a unit such as 512MiB, 2GiB, 64KiB`,
      });
      return z.NEVER;
    }
    return parsed;
  });

const duration = z
  .union([z.string().meta({ pattern: DURATION_PATTERN }), z.number().min(0)], {
    error: 'expected a duration: milliseconds, or a number and a unit such as 250ms, 30s, 15m, 1h, 7d',
  })
  .meta({ description: 'A duration: milliseconds, or a number and a unit such as 250ms, 30s, 15m, 1h, 7d' })
  .transform((value, ctx) => {
    const parsed = parseDuration(value);
    if (parsed === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `"${value}" is not a duration; write a number and a unit such as 250ms, 30s, 15m, 1h, 7d`,
      });
      return z.NEVER;
    }
    return parsed;
  });

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:8815')
  .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535, 'the port must be between 0 and 65535');

export const storageTypeNames = ['memory', 'disk_mapped', 'disk'] as const;
export type StorageTypeName = (typeof storageTypeNames)[number];

/** TLS on the Flight port (and the metrics port): PEM files, reloaded on SIGHUP. */
export const tlsSchema = z.strictObject({
  cert: z.string().min(1),
  key: z.string().min(1),
  /** CA whose client certificates are accepted (mutual TLS). */
  clientCa: z.string().min(1).optional(),
  /** Refuse connections without a client certificate signed by clientCa. */
  requireClientCert: z.boolean().default(false),
  /**
   * The OpenSSL cipher list offered (TLS 1.3 and 1.2 suites). Default: AEAD suites only
   * (AES-GCM, ChaCha20-Poly1305; no CBC, no SHA-1 MACs).
   */
  ciphers: z.string().min(1).optional(),
});

export const serverSchema = z.strictObject({
  listen: hostPort.default('127.0.0.1:8815'),
  advertise: z
    .string()
    .regex(/^grpc(\+tcp|\+tls)?:\/\/.+:\d{1,5}$/, 'expected a Flight location such as grpc+tcp://host:8815')
    .optional(),
  metrics: hostPort.optional(),
  /** Largest Flight message accepted or sent (one whole batch for pyarrow and Java). */
  maxMessageSize: size.default(256 * 1024 * 1024),
  /** When set, DoGet splits stored batches larger than this (Go and Rust refuse >4 MiB). */
  maxBatchBytes: size.optional(),
  /** GetFlightInfo splits a larger flight into endpoints (batch ranges) of at most this size. */
  maxEndpointBytes: size.default(256 * 1024 * 1024),
  /** How many `DoPut`/`DoGet` streams one connection may run at once. */
  maxConcurrentStreams: z.number().int().positive().default(100),
  /**
   * How long a ticket from GetFlightInfo (or renewed by RenewFlightEndpoint) is honoured:
   * each endpoint's `expiration_time`. A version replaced meanwhile stays readable through
   * its tickets until then, unless eviction under pressure needs its room first.
   */
  ticketGrace: duration
    .default(5 * 60_000)
    .refine((ms) => ms >= 1000, 'ticketGrace must be at least 1s: clients need time to read an endpoint'),
  /**
   * After a start lists the durable stores (it serves then), how many flight manifests are
   * read at once in the background so listings, expiry and limits become exact.
   */
  recoveryConcurrency: z.number().int().positive().max(256).default(16),
  /** How long shutdown waits for in-flight calls before cancelling them. */
  shutdownGrace: duration.default(10_000),
  /**
   * Where flights of durable classes still without a durable copy at shutdown (weak uploads
   * shutdownGrace did not finish, flights a backfill had not reached) are kept until the next
   * start uploads them; used when some durable store is configured. Default: `spool` beside the first tier or filesystem-store
   * directory; a config with neither has no spool unless this is set.
   */
  spool: z.string().min(1).optional(),
  /** TLS for Flight (and for the metrics port): `grpc+tls://` locations. */
  tls: tlsSchema.optional(),
  /** When set, `/metrics` answers only requests with `authorization: Bearer <this>`. */
  metricsToken: z.string().min(16, 'metricsToken must be at least 16 characters').optional(),
});

export const memoryTypeSchema = z.strictObject({ capacity: size });
export const diskTypeSchema = z.strictObject({ path: z.string().min(1), capacity: size });

const storageTypesSchema = z.strictObject({
  memory: memoryTypeSchema.optional(),
  disk_mapped: diskTypeSchema.optional(),
  disk: diskTypeSchema.optional(),
});

export const durableStoreSchema = z.discriminatedUnion('type', [
  z.strictObject({
    id: z.string().min(1),
    type: z.literal('filesystem'),
    path: z.string().min(1),
  }),
  z.strictObject({
    id: z.string().min(1),
    type: z.literal('s3'),
    bucket: z.string().min(1),
    region: z.string().min(1).default('us-east-1'),
    endpoint: z.url().optional(),
    forcePathStyle: z.boolean().default(false),
  }),
]);

const tierSchema = z.strictObject({
  storage: z.enum(storageTypeNames),
  maxFlightSize: size.optional(),
  uploadSpill: z.enum(['reject', 'spill']).default('reject'),
  priority: z.number().int().default(0),
  evictionSpill: z.boolean().default(false),
  moveAfter: duration.optional(),
  promoteAfter: z.strictObject({ accesses: z.number().int().positive(), within: duration }).optional(),
});

export const storageClassSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'a class name uses letters, digits, _ . -'),
  prefix: z.string(),
  durability: z.enum(['none', 'weak', 'strong']).default('none'),
  durableStore: z.string().optional(),
  durablePrefix: z.string().default(''),
  ttl: duration.refine((v) => v > 0, 'ttl must be longer than 0 (omit it to keep flights until evicted)').optional(),
  replicas: z.number().int().positive().default(1),
  tiers: z.array(tierSchema).min(1, 'a class needs at least one tier'),
});

const limitCommon = {
  name: z.string().min(1),
  classes: z.array(z.string()).min(1),
  scope: z.enum(['ephemeral', 'total']).default('ephemeral'),
  onLimit: z.enum(['evict', 'reject']).default('reject'),
};

export const limitPolicySchema = z.discriminatedUnion('type', [
  z.strictObject({ ...limitCommon, type: z.literal('standard'), limit: size }),
  z.strictObject({
    ...limitCommon,
    type: z.literal('segmented'),
    depth: z.number().int().min(1).default(1),
    limit: size,
  }),
  z.strictObject({
    ...limitCommon,
    type: z.literal('hierarchical'),
    levels: z
      .array(z.strictObject({ default: size.optional(), overrides: z.record(z.string(), size).default({}) }))
      .min(1),
  }),
]);

export const accessWords = ['read', 'write', 'admin'] as const;
export type Access = (typeof accessWords)[number];

/** In the file usually `${ENV_VAR}` (replaced before validation); the JSON Schema allows both. */
export const tokenSecretSchema = z
  .string()
  .min(32, 'tokenSecret must be at least 32 characters: use a random one, e.g. `openssl rand -base64 48`');

const userSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.@-]+$/, 'a user name uses letters, digits, _ . @ -'),
  passwordHash: z
    .string()
    // The whole PHC string, salt and hash included: a placeholder (`…$...`) would start a
    // server with a user nobody can log in as.
    .regex(
      /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{22,}$/,
      'expected a whole argon2id hash as `tierflight hash-password` prints it ($argon2id$v=19$m=…,t=…,p=…$salt$hash)',
    )
    .optional(),
  /** With mutual TLS: a client certificate with this subject (e.g. `CN=ops`) is this user. */
  certSubject: z.string().min(1).optional(),
  permissions: z
    .array(z.strictObject({ prefix: z.string(), access: z.array(z.enum(accessWords)).min(1) }))
    .min(1, 'a user needs at least one permission'),
});

/** Authentication and per-prefix permissions (DESIGN §7); absent: every caller may do everything. */
export const authSchema = z.strictObject({
  /** Signs bearer tokens (HS256); every node of a cluster shares it. `${ENV_VAR}` reads it from the environment. */
  tokenSecret: tokenSecretSchema,
  tokenTtl: duration.refine((v) => v > 0, 'tokenTtl must be longer than 0').prefault('1h'),
  /**
   * How long a session lasts from its login with a password or certificate: renewing a
   * token through Handshake keeps the login's time, and no renewal reaches past this.
   */
  sessionMax: duration.refine((v) => v > 0, 'sessionMax must be longer than 0').prefault('12h'),
  users: z.array(userSchema).min(1, 'auth needs at least one user'),
});

/** Cache-fill reservations (DESIGN §6): where they live and how long they last. */
export const reservationsSchema = z.strictObject({
  store: z
    .discriminatedUnion('type', [
      z.strictObject({ type: z.literal('memory') }),
      z.strictObject({
        type: z.literal('redis'),
        url: z.string().regex(/^rediss?:\/\//, 'a Redis URL: redis://host:port/db or rediss://… for TLS'),
        /** Prefix of every key Tierflight writes, so several deployments can share one Redis. */
        keyPrefix: z.string().default('tierflight:'),
      }),
    ])
    .prefault({ type: 'memory' }),
  /** A reservation lasts heartbeatSeconds × this after each reserve call. */
  graceMultiplier: z.number().positive().default(3),
  /** Longest heartbeat a client may ask for. */
  maxHeartbeat: duration.refine((v) => v > 0, 'maxHeartbeat must be longer than 0').prefault('5m'),
  /** Calls waiting for reserved flights at once (x-tierflight-wait-ms, PollFlightInfo); more get RESOURCE_EXHAUSTED. */
  maxWaiters: z.number().int().positive().default(10_000),
  /** Calls one authenticated user may have waiting at once (on this node): no tenant starves the others' waits. */
  maxWaitersPerUser: z.number().int().positive().default(1_000),
  /** Live reservations one authenticated user may hold at once (taken through this node). */
  maxPerUser: z.number().int().positive().default(1_000),
});

/** A Flight location a node is reached at. */
const locationSchema = z
  .string()
  .regex(/^grpc(\+tcp|\+tls)?:\/\/[^/\s]+:\d+$/, 'a location like grpc+tcp://10.0.0.1:8815 or grpc+tls://host:8815');

/** Several nodes over shared durable stores (DESIGN §8): who the members are and how they are watched. */
export const clusterSchema = z
  .strictObject({
    /** This node's name among the members (with `discover`: its `address:port`). */
    self: z.string().min(1),
    members: z
      .array(z.strictObject({ name: z.string().min(1), location: locationSchema }))
      .min(1)
      .optional(),
    /** Members from DNS (a Kubernetes headless service): every address of the name, re-resolved `every`. */
    discover: z
      .strictObject({
        dns: z.string().min(1),
        port: z.number().int().min(1).max(65535).default(8815),
        every: duration.refine((v) => v > 0, 'every must be longer than 0').prefault('10s'),
        /** The DNS server to ask (`host:port`); default: the system's resolvers. */
        resolver: z
          .string()
          .regex(/^[^\s:]+:\d+$|^\[[0-9a-fA-F:]+\]:\d+$/, 'a DNS server as host:port, e.g. 10.96.0.10:53')
          .optional(),
      })
      .optional(),
    /** Each member is called this often; 3 missed answers in a row = down, back when it answers. */
    probeEvery: duration.refine((v) => v > 0, 'probeEvery must be longer than 0').prefault('2s'),
  })
  .refine((c) => (c.members === undefined) !== (c.discover === undefined), {
    message: 'cluster needs exactly one of members (a static list) or discover (DNS)',
  });

export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  server: serverSchema.prefault({}),
  storageTypes: storageTypesSchema,
  durableStores: z.array(durableStoreSchema).default([]),
  storageClasses: z.array(storageClassSchema).min(1, 'define at least one storage class'),
  limitPolicies: z.array(limitPolicySchema).default([]),
  reservations: reservationsSchema.prefault({}),
  auth: authSchema.optional(),
  cluster: clusterSchema.optional(),
});

export type Config = z.output<typeof configSchema>;
export type ServerConfig = Config['server'];
export type StorageClassConfig = Config['storageClasses'][number];
export type TierConfig = StorageClassConfig['tiers'][number];
export type DurableStoreConfig = Config['durableStores'][number];
export type LimitPolicyConfig = Config['limitPolicies'][number];
export type ReservationsConfig = Config['reservations'];
export type AuthConfig = NonNullable<Config['auth']>;
export type TlsConfig = NonNullable<Config['server']['tls']>;
export type ClusterConfig = NonNullable<Config['cluster']>;
