/**
 * Certificate subjects compared by their parts, never as joined strings: a subject is the
 * multiset of its attributes (type and value). `parseDistinguishedName` reads a string as
 * RFC 4514 writes it (`CN=ops,O=Example`; `\,` `\+` `\"` `\\` and `\2C`-style hex escapes,
 * `+` joining attributes of one RDN, and quoted values as older writers produce them);
 * `subjectKey` turns either side into one unambiguous key. A CN of `eve,O=Example` is one
 * attribute, so it never matches `CN=eve, O=Example`.
 *
 * Hand-written: the libraries for this either pull in a global reflection polyfill
 * (@peculiar/x509) or are no longer maintained (ldapjs), and the grammar is small.
 */

export interface SubjectAttribute {
  /** The attribute type as written (`CN`, `emailAddress`, `2.5.4.3`); compared case-insensitively. */
  type: string;
  value: string;
}

export class DistinguishedNameError extends Error {}

const SPECIAL = new Set([',', '+', '"', '\\', '<', '>', ';', '=', ' ', '#']);

/** The attributes of an RFC 4514 distinguished name; DistinguishedNameError for a malformed one. */
export function parseDistinguishedName(dn: string): SubjectAttribute[] {
  const out: SubjectAttribute[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new DistinguishedNameError(`"${dn}": ${why} at character ${i + 1}`);
  };
  const skipSpaces = (): void => {
    while (dn[i] === ' ') i++;
  };
  while (i < dn.length) {
    skipSpaces();
    const typeStart = i;
    while (i < dn.length && /[A-Za-z0-9.-]/.test(dn[i] as string)) i++;
    const type = dn.slice(typeStart, i);
    if (!/^([A-Za-z][A-Za-z0-9-]*|\d+(\.\d+)+)$/.test(type)) fail('an attribute type is expected');
    skipSpaces();
    if (dn[i] !== '=') fail('"=" is expected');
    i++;
    skipSpaces();
    out.push({ type, value: readValue() });
    skipSpaces();
    if (i >= dn.length) break;
    if (dn[i] !== ',' && dn[i] !== '+' && dn[i] !== ';') fail('"," or "+" is expected');
    i++;
    if (i >= dn.length) fail('an attribute is expected after the separator');
  }
  if (out.length === 0) throw new DistinguishedNameError(`"${dn}" names no attribute`);
  return out;

  function readValue(): string {
    if (dn[i] === '#') fail('BER-encoded (#hex) values are not supported; write the value as text');
    if (dn[i] === '"') {
      i++;
      let value = '';
      while (i < dn.length && dn[i] !== '"') value += dn[i] === '\\' ? escape() : dn[i++];
      if (dn[i] !== '"') fail('a closing quote is expected');
      i++;
      return value;
    }
    const bytes: number[] = [];
    const text = (s: string): void => void bytes.push(...Buffer.from(s, 'utf8'));
    let trailingSpaces = 0;
    while (i < dn.length && dn[i] !== ',' && dn[i] !== '+' && dn[i] !== ';') {
      const c = dn[i] as string;
      if (c === '\\') {
        const hex = /^[0-9A-Fa-f]{2}$/.test(dn.slice(i + 1, i + 3));
        if (hex) {
          bytes.push(parseInt(dn.slice(i + 1, i + 3), 16));
          i += 3;
        } else text(escape());
        trailingSpaces = 0;
        continue;
      }
      if (c === '"' || c === '<' || c === '>') fail(`"${c}" must be escaped`);
      text(c);
      trailingSpaces = c === ' ' ? trailingSpaces + 1 : 0;
      i++;
    }
    // Unescaped spaces before a separator are not part of the value (`CN=ops , O=x`).
    const value = Buffer.from(bytes.slice(0, bytes.length - trailingSpaces));
    const decoded = new TextDecoder('utf-8', { fatal: false }).decode(value);
    if (decoded.includes('\uFFFD')) fail('hex escapes must spell UTF-8');
    return decoded;
  }

  function escape(): string {
    const next = dn[i + 1];
    if (next === undefined || !SPECIAL.has(next)) fail('"\\\\" must escape a special character or two hex digits');
    i += 2;
    return next as string;
  }
}

/**
 * One key per subject, equal for equal multisets of attributes whatever their order:
 * types upper-cased (`cn` is `CN`), values exact and quoted so no value can imitate a
 * separator.
 */
export function subjectKey(attributes: readonly SubjectAttribute[]): string {
  return attributes
    .map((a) => `${a.type.toUpperCase()}=${JSON.stringify(a.value)}`)
    .sort()
    .join('\n');
}

/** The attributes of a certificate subject as Node presents it (`{ CN: 'ops', OU: ['a', 'b'] }`). */
export function certificateAttributes(subject: Readonly<Record<string, unknown>>): SubjectAttribute[] {
  return Object.entries(subject).flatMap(([type, value]) =>
    (Array.isArray(value) ? value : [value]).map((v) => ({ type, value: String(v) })),
  );
}
