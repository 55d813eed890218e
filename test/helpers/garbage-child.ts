/**
 * Run by test/core/garbage.test.ts in a Node process of its own (with or without the
 * server's flags): buffers kept and then dropped, as a memory tier keeps and drops flights,
 * and what core/garbage.ts did about them. Prints JSON.
 */
import { collectionsRequested, keepsLive, received } from '../../src/core/garbage.js';

const MIB = 1024 * 1024;
let kept: Buffer[] = [];
keepsLive(() => kept.reduce((n, b) => n + b.length, 0));
const arrayBuffers = () => Math.round(process.memoryUsage().arrayBuffers / MIB);
const settle = () => new Promise((r) => setTimeout(r, 300));

// 384 MiB received and kept, 4 MiB at a time: all of it live, nothing to collect.
for (let i = 0; i < 96; i++) {
  const b = Buffer.alloc(4 * MIB, i);
  kept.push(b);
  received(b.length);
}
await settle();
const afterKept = { requested: collectionsRequested(), arrayBuffers: arrayBuffers() };
// Dropped (a replaced flight), then more received and not kept (written on elsewhere).
kept = [];
for (let i = 0; i < 16; i++) received(Buffer.alloc(4 * MIB, i).length);
for (let i = 0; i < 40 && arrayBuffers() > 200; i++) await settle();
const afterDropped = { requested: collectionsRequested(), arrayBuffers: arrayBuffers() };
console.log(JSON.stringify({ gc: typeof (globalThis as { gc?: unknown }).gc === 'function', afterKept, afterDropped }));
