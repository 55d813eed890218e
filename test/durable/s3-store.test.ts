import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../src/durable/s3-store.js';
import { startMoto, type Moto } from '../helpers/moto.js';
import { durableStoreConformance } from './conformance.js';

// The s3 store against a real S3-compatible server (moto_server on loopback), with the
// SDK's default checksum settings.

let moto: Moto;
const BUCKET = 'conformance';

const store = (options: Partial<ConstructorParameters<typeof S3Store>[0]> = {}): S3Store =>
  new S3Store({
    id: 's3test',
    bucket: BUCKET,
    region: 'us-east-1',
    endpoint: moto.endpoint,
    forcePathStyle: true,
    partSize: 5 * 1024 * 1024,
    ...options,
  });

const pendingUploads = async (): Promise<number> =>
  (await moto.client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads?.length ?? 0;

beforeAll(async () => {
  moto = await startMoto();
  await moto.createBucket(BUCKET);
});
afterAll(async () => {
  await moto?.stop();
});

durableStoreConformance('s3 (moto_server)', async () => ({
  store: store(),
  pendingUploads,
  cleanup: async () => undefined,
}));

describe('s3 store failures', () => {
  it('reports a store that is down as transient, and a missing bucket as permanent', async () => {
    const down = new S3Store({
      id: 'down',
      bucket: BUCKET,
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      forcePathStyle: true,
      maxAttempts: 1,
    });
    await expect(down.head('x')).rejects.toMatchObject({ kind: 'transient' });
    down.close();
    const noBucket = store({ bucket: 'no-such-bucket' });
    await expect(noBucket.get('x')).rejects.toMatchObject({ kind: 'permanent' });
    noBucket.close();
  });

  it('fails a put whose store hangs mid-upload, leaving no multipart upload behind', async () => {
    const s = store({ maxAttempts: 1, idleTimeout: 1500 });
    const body = async function* (): AsyncGenerator<Buffer> {
      for (let i = 0; i < 4; i++) {
        if (i === 2) moto.pause();
        yield Buffer.alloc(5 * 1024 * 1024, i);
      }
    };
    try {
      await expect(s.put('hang/x', body())).rejects.toMatchObject({ kind: 'transient' });
    } finally {
      moto.resume();
    }
    // The abort reaches the store only once it answers again: the store keeps retrying it.
    await s.settled();
    expect(await pendingUploads()).toBe(0);
    expect(await s.head('hang/x')).toBeUndefined();
    s.close();
  });
});
