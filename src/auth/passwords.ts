import { hash, verify } from '@node-rs/argon2';

/**
 * Password hashes are argon2id PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), made
 * and checked by @node-rs/argon2 (prebuilt, no install scripts). Its defaults follow OWASP's
 * argon2id minimum (19 MiB, 2 passes, 1 lane): about 20 ms per check on this class of
 * machine, which is the point.
 */
export function hashPassword(password: string): Promise<string> {
  return hash(password);
}

/** Whether `password` matches the hash; false (never a throw) for a malformed hash. */
export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}
