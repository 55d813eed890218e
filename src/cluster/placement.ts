import { createHash } from 'node:crypto';

/**
 * Rendezvous (highest random weight) hashing: every member gets a pseudo-random weight for
 * a key, from a hash of the member's name and the key, and the key's owners are the members
 * with the highest weights. Every node computes the same order from the same member names,
 * with no coordination; a member that joins takes only the keys it now weighs highest for,
 * and one that leaves hands each of its keys to that key's next member, nothing else moves.
 *
 * No npm package for it is both well kept and widely used (the env package list has only
 * small single-author ones), so these few lines are ours, tested for balance and minimal
 * movement in test/cluster/placement.test.ts.
 */
export function rendezvousOrder<M extends { name: string }>(key: string, members: readonly M[]): M[] {
  return members
    .map((member) => ({ member, weight: weight(member.name, key) }))
    .sort((a, b) => (a.weight > b.weight ? -1 : a.weight < b.weight ? 1 : a.member.name < b.member.name ? -1 : 1))
    .map((w) => w.member);
}

/** The first `count` members of a key's rendezvous order (all of them when there are fewer). */
export function owners<M extends { name: string }>(key: string, members: readonly M[], count: number): M[] {
  return rendezvousOrder(key, members).slice(0, Math.max(1, count));
}

/** 64 bits of SHA-256 over the member's name and the key (a NUL between them: no name can run into a key). */
function weight(member: string, key: string): bigint {
  return createHash('sha256').update(member).update('\0').update(key).digest().readBigUInt64BE(0);
}
