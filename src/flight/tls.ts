import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { experimental, type ServerCredentials } from '@grpc/grpc-js';
import type { TlsConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';

type IdentityListener = experimental.IdentityCertificateUpdateListener;
type CaListener = experimental.CaCertificateUpdateListener;

/**
 * The cipher suites Tierflight's TLS offers unless `server.tls.ciphers` says otherwise:
 * AEAD only. TLS 1.3's suites are all AEAD (and naming none would turn TLS 1.3 off); for
 * TLS 1.2, ECDHE with AES-GCM or ChaCha20-Poly1305, never CBC or SHA-1 MACs.
 */
export const AEAD_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/**
 * Sets the suites every TLS context of this process offers by default. Process-wide on
 * purpose: grpc-js builds the Flight port's contexts (again on each certificate reload)
 * with the default list, and so do the metrics port and the node-to-node clients.
 */
export function applyCipherPolicy(config: TlsConfig): void {
  tls.DEFAULT_CIPHERS = config.ciphers ?? AEAD_CIPHERS;
}

/**
 * The PEM files of `server.tls`, read at start and again on `reload` (SIGHUP): grpc-js
 * gives new connections the new certificate, and connections already open (streams in
 * progress) keep theirs. A file that cannot be read on reload keeps the previous ones.
 */
export class TlsFiles implements experimental.CertificateProvider {
  private identity: { certificate: Buffer; privateKey: Buffer };
  private ca: Buffer | undefined;
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly caListeners = new Set<CaListener>();

  constructor(
    readonly config: TlsConfig,
    private readonly log: Logger,
  ) {
    const files = this.read();
    this.identity = files.identity;
    this.ca = files.ca;
  }

  /** Server credentials over these files: TLS, and mutual TLS with `clientCa`. */
  credentials(): ServerCredentials {
    // grpc-js names this function's parameters the other way round from what it does with
    // them (its first argument is the identity provider, the second the CA provider); the
    // TLS tests (test/auth) fail if that ever changes.
    return experimental.createCertificateProviderServerCredentials(
      this,
      this.config.clientCa === undefined ? null : this,
      this.config.requireClientCert,
    );
  }

  /** Re-reads the files; true when they were read (and handed to grpc-js). */
  reload(): boolean {
    let files: ReturnType<TlsFiles['read']>;
    try {
      files = this.read();
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'TLS files could not be read; the previous ones stay in use');
      return false;
    }
    this.identity = files.identity;
    this.ca = files.ca;
    for (const listener of this.identityListeners) listener(this.identity);
    if (this.ca) for (const listener of this.caListeners) listener({ caCertificate: this.ca });
    this.log.info({ cert: this.config.cert }, 'TLS certificate reloaded');
    return true;
  }

  /** The current PEM contents, for the metrics port's HTTPS server. */
  get pem(): { cert: Buffer; key: Buffer; ca?: Buffer } {
    return { cert: this.identity.certificate, key: this.identity.privateKey, ...(this.ca ? { ca: this.ca } : {}) };
  }

  // grpc-js registers its own watcher only after adding these listeners: a listener called
  // at once would update nobody, so the current files are handed over a tick later.
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => this.identityListeners.has(listener) && listener(this.identity));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    queueMicrotask(() => this.ca && this.caListeners.has(listener) && listener({ caCertificate: this.ca }));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  private read(): { identity: { certificate: Buffer; privateKey: Buffer }; ca: Buffer | undefined } {
    const file = (name: string, what: string): Buffer => {
      try {
        return readFileSync(name);
      } catch (err) {
        throw new Error(`server.tls.${what}: cannot read ${name}: ${(err as Error).message}`);
      }
    };
    return {
      identity: { certificate: file(this.config.cert, 'cert'), privateKey: file(this.config.key, 'key') },
      ca: this.config.clientCa === undefined ? undefined : file(this.config.clientCa, 'clientCa'),
    };
  }
}
