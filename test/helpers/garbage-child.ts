/**
 * Run by test/core/garbage.test.ts in a Node process of its own (with or without the
 * server's flags): buffers kept and then dropped, as a memory tier keeps and drops flights,
 * and buffers held that the storage does not count (as pools hold theirs); what
 * core/garbage.ts did about them. Prints JSON.
 */
import { collectionsRequested, dropped, keepsLive, received } from '../../src/core/garbage.js';

const MIB = 1024 * 1024;
let kept: Buffer[] = [];
keepsLive(() => kept.reduce((n, b) => n + b.length, 0));
const arrayBuffers = () => Math.round(process.memoryUsage().arrayBuffers / MIB);
const settle = () => new Promise((r) => setTimeout(r, 300));
const state = () => ({ requested: collectionsRequested(), arrayBuffers: arrayBuffers() });

// 384 MiB received and kept, 4 MiB at a time: all of it live, nothing to collect.
for (let i = 0; i < 96; i++) {
  const b = Buffer.alloc(4 * MIB, i);
  kept.push(b);
  received(b.length);
}
await settle();
const afterKept = state();
// Dropped at once (a replaced flight): garbage, collected without waiting for more puts.
kept = [];
dropped(384 * MIB);
for (let i = 0; i < 40 && arrayBuffers() > 100; i++) await settle();
const afterDropped = state();
// 256 MiB held but not counted live (as a pool holds buffers): one collection finds it
// still there, and no more are asked for while nothing new comes.
const held: Buffer[] = [];
for (let i = 0; i < 64; i++) {
  held.push(Buffer.alloc(4 * MIB, i));
  received(4 * MIB);
}
await settle();
for (let i = 0; i < 64; i++) received(4 * MIB);
await settle();
const afterHeld = { ...state(), held: held.length };
// Garbage made without being counted (as a weak upload reading a disk tier makes it): the
// once-a-second look finds it.
let uncounted: Buffer[] = [];
for (let i = 0; i < 128; i++) uncounted.push(Buffer.alloc(4 * MIB, i));
await settle();
uncounted = [];
for (let i = 0; i < 60 && arrayBuffers() > 300; i++) await settle();
const afterUncounted = state();
console.log(
  JSON.stringify({
    gc: typeof (globalThis as { gc?: unknown }).gc === 'function',
    afterKept,
    afterDropped,
    afterHeld,
    afterUncounted,
  }),
);
