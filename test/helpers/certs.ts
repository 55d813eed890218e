import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Certificates the suite makes itself with openssl (nothing binary is committed): a test
 * CA, a server certificate for 127.0.0.1 and localhost, client certificates with the given
 * common names signed by the CA, and a second CA nobody trusts. EC P-256 keys: quick to make.
 */
export interface TestCerts {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  /** Client certificate and key paths by common name. */
  clients: Record<string, { cert: string; key: string }>;
  /** A CA and server certificate the clients do not trust. */
  strangerCa: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function keyAndCsr(dir: string, name: string, subject: string): void {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`], dir);
  // -subj is openssl's own notation: `/` between RDNs, `+` between the attributes of one
  // (multi-valued) RDN, `\` escapes; commas, quotes and UTF-8 are plain value characters.
  openssl(
    ['req', '-new', '-utf8', '-multivalue-rdn', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`],
    dir,
  );
}

function selfSignedCa(dir: string, name: string, subject: string): void {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`], dir);
  openssl(['req', '-x509', '-new', '-key', `${name}.key`, '-subj', subject, '-days', '2', '-out', `${name}.pem`], dir);
}

function sign(dir: string, name: string, ca: string, extensions: string): void {
  writeFileSync(path.join(dir, `${name}.ext`), extensions);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.pem`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.pem`,
    ],
    dir,
  );
}

/**
 * `clients`: client certificates by name; a plain name gets the subject `/CN=<name>`, an
 * entry `{ name, subject }` the subject given in openssl's `-subj` notation.
 */
export function makeTestCerts(
  clientNames: (string | { name: string; subject: string })[] = ['ops', 'nobody'],
): TestCerts {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tierflight-certs-'));
  selfSignedCa(dir, 'ca', '/CN=Tierflight Test CA');
  keyAndCsr(dir, 'server', '/CN=localhost');
  sign(dir, 'server', 'ca', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  const clients: TestCerts['clients'] = {};
  for (const entry of clientNames) {
    const { name, subject } = typeof entry === 'string' ? { name: entry, subject: `/CN=${entry}` } : entry;
    keyAndCsr(dir, `client-${name}`, subject);
    sign(dir, `client-${name}`, 'ca', 'extendedKeyUsage=clientAuth\n');
    clients[name] = { cert: path.join(dir, `client-${name}.pem`), key: path.join(dir, `client-${name}.key`) };
  }
  selfSignedCa(dir, 'stranger', '/CN=Someone Else');
  return {
    dir,
    ca: path.join(dir, 'ca.pem'),
    serverCert: path.join(dir, 'server.pem'),
    serverKey: path.join(dir, 'server.key'),
    clients,
    strangerCa: path.join(dir, 'stranger.pem'),
  };
}
