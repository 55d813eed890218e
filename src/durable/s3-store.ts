import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  checkKey,
  DurableStoreError,
  type ByteRange,
  type DurableErrorKind,
  type DurableStore,
  type ObjectInfo,
  type PutOptions,
} from './durable-store.js';
import { systemClock, type Clock } from '../core/clock.js';
import { retry } from '../core/retry.js';

export interface S3StoreOptions {
  id: string;
  bucket: string;
  region: string;
  endpoint?: string;
  forcePathStyle: boolean;
  /** Multipart part size; parts upload while the body still streams in. */
  partSize?: number;
  /** Parts uploaded at once per object. */
  queueSize?: number;
  /** Attempts per request (the SDK's standard retry strategy with backoff). */
  maxAttempts?: number;
  /** Milliseconds a connection may stay silent before the request counts as failed. */
  idleTimeout?: number;
  /** Whose time background cleanups wait on (the system's by default). */
  clock?: Clock;
}

/** Attempts at a background cleanup (aborting a multipart upload) while the store fails transiently. */
const CLEANUP_ATTEMPTS = 30;

const MIB = 1024 * 1024;

/**
 * A durable store in an S3 bucket (or any S3-compatible server). Credentials come from
 * the standard AWS chain (environment, profile, instance role). Objects are written with
 * `lib-storage`'s Upload: one PutObject for small bodies, otherwise a multipart upload
 * whose parts go out while the body is still arriving, aborted on any failure so no
 * orphaned upload is left. Connections are kept alive; every GetObject body is handed to
 * the caller, who must consume or destroy it.
 */
export class S3Store implements DurableStore {
  readonly id: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly partSize: number;
  private readonly queueSize: number;
  /** Multipart aborts that failed once and are being retried. */
  private readonly cleanups = new Set<Promise<void>>();
  /** Uploads in progress, whose multipart uploads a sweep must leave alone. */
  private readonly active = new Set<Upload>();
  private readonly clock: Clock;

  constructor(options: S3StoreOptions) {
    this.id = options.id;
    this.clock = options.clock ?? systemClock;
    this.bucket = options.bucket;
    this.partSize = options.partSize ?? 8 * MIB;
    this.queueSize = options.queueSize ?? 4;
    const agent = { keepAlive: true, maxSockets: 64 };
    this.client = new S3Client({
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      maxAttempts: options.maxAttempts ?? 3,
      requestHandler: {
        httpAgent: new http.Agent(agent),
        httpsAgent: new https.Agent(agent),
        connectionTimeout: 5_000,
        // A store that stops answering fails the request (and is retried) instead of hanging it.
        socketTimeout: options.idleTimeout ?? 30_000,
        requestTimeout: 300_000,
        throwOnRequestTimeout: true,
      },
    });
  }

  /** The SDK client, for tests that inspect the bucket (multipart uploads left behind). */
  get s3(): S3Client {
    return this.client;
  }

  get bucketName(): string {
    return this.bucket;
  }

  async put(key: string, body: AsyncIterable<Buffer>, options: PutOptions = {}): Promise<ObjectInfo> {
    checkKey(this.id, key);
    let size = 0;
    // Set when the body outgrows one part, i.e. when a multipart upload is being created.
    let multipart = false;
    const partSize = this.partSize;
    const counted = Readable.from(
      (async function* () {
        for await (const chunk of body) {
          size += chunk.length;
          if (size >= partSize) multipart = true;
          yield chunk;
        }
      })(),
      { objectMode: false },
    );
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: counted },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    this.active.add(upload);
    const onAbort = (): void => void upload.abort().catch(() => undefined);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
      const done = await upload.done();
      return { key, size, ...('ETag' in done && done.ETag ? { version: done.ETag } : {}) };
    } catch (err) {
      counted.destroy();
      // Upload aborts its multipart upload on failure, but that abort fails too when the
      // store is what failed: keep retrying it so no orphaned upload (and its parts) stays.
      if (upload.uploadId) this.abortInBackground(key, upload.uploadId);
      // A CreateMultipartUpload that timed out may still complete on the store later,
      // leaving an upload whose id we never learnt: look for it once the store answers.
      else if (multipart) this.sweepInBackground(key);
      throw this.error(key, err);
    } finally {
      this.active.delete(upload);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    checkKey(this.id, key);
    if (range && range.end !== undefined && range.end <= range.start) {
      throw new DurableStoreError('permanent', this.id, key, `empty byte range ${range.start}-${range.end}`);
    }
    try {
      const out = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(range ? { Range: `bytes=${range.start}-${range.end === undefined ? '' : range.end - 1}` } : {}),
        }),
        signal ? { abortSignal: signal } : {},
      );
      if (!(out.Body instanceof Readable)) {
        throw new DurableStoreError('transient', this.id, key, 'GetObject returned no stream body');
      }
      return out.Body;
    } catch (err) {
      throw this.error(key, err);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    checkKey(this.id, key);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return {
        key,
        size: out.ContentLength ?? 0,
        ...(out.ETag ? { version: out.ETag } : {}),
        ...(out.LastModified ? { modifiedAt: out.LastModified.getTime() } : {}),
      };
    } catch (err) {
      const e = this.error(key, err);
      if (e.kind === 'not_found') return undefined;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(this.id, key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      const e = this.error(key, err);
      if (e.kind !== 'not_found') throw e;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
      } catch (err) {
        throw this.error(prefix, err);
      }
      for (const o of out.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield {
          key: o.Key,
          size: o.Size ?? 0,
          ...(o.ETag ? { version: o.ETag } : {}),
          ...(o.LastModified ? { modifiedAt: o.LastModified.getTime() } : {}),
        };
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  /** Resolves when no multipart abort is still being retried. */
  async settled(): Promise<void> {
    while (this.cleanups.size > 0) await Promise.allSettled([...this.cleanups]);
  }

  close(): void {
    this.client.destroy();
  }

  private abortInBackground(key: string, uploadId: string): void {
    this.inBackground(() =>
      this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })),
    );
  }

  /**
   * Aborts multipart uploads of `key` that no put of this process holds. (Initiation times
   * cannot narrow it down: S3-compatible servers report them loosely, moto not at all.
   * Another node putting the same path at this moment would see its put fail and retry.)
   * Runs twice, a few seconds apart, because the store may finish the timed-out create
   * only after it answers our first listing.
   */
  private sweepInBackground(key: string): void {
    const sweep = async (): Promise<void> => {
      const ours = new Set([...this.active].map((u) => u.uploadId).filter((id) => id !== undefined));
      const out = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: key }));
      for (const u of out.Uploads ?? []) {
        if (u.Key !== key || !u.UploadId || ours.has(u.UploadId)) continue;
        await this.client.send(
          new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: u.UploadId }),
        );
      }
    };
    this.inBackground(async () => {
      await sweep();
      await this.clock.sleep(3_000);
      await sweep();
    });
  }

  /** Retries `work` with backoff while the store fails transiently. */
  private inBackground(work: () => Promise<unknown>): void {
    const run = retry(work, {
      clock: this.clock,
      attempts: CLEANUP_ATTEMPTS,
      baseMs: 200,
      retryable: (err) => classify(err) === 'transient',
    }).then(
      () => undefined,
      () => undefined, // already gone, or nothing we can do
    );
    this.cleanups.add(run);
    void run.finally(() => this.cleanups.delete(run));
  }

  private error(key: string, err: unknown): DurableStoreError {
    if (err instanceof DurableStoreError) return err;
    return new DurableStoreError(classify(err), this.id, key, describe(err), { cause: err });
  }
}

function classify(err: unknown): DurableErrorKind {
  if (err instanceof S3ServiceException) {
    const status = err.$metadata.httpStatusCode ?? 0;
    if (status === 404 || err.name === 'NoSuchKey' || err.name === 'NotFound') {
      // A missing bucket is a configuration problem, not a missing object.
      return err.name === 'NoSuchBucket' ? 'permanent' : 'not_found';
    }
    if (status >= 500 || status === 429 || err.$retryable) return 'transient';
    if (status === 408) return 'transient';
    return 'permanent';
  }
  // Network errors, timeouts and aborts: the store may well answer next time.
  return 'transient';
}

function describe(err: unknown): string {
  if (err instanceof S3ServiceException) {
    return `${err.name} (HTTP ${err.$metadata.httpStatusCode ?? '?'}): ${err.message}`;
  }
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}: ${e.message}` : (e?.message ?? String(err));
}
