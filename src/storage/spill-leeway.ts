import type { TierConfig } from '../config/schema.js';

/** The most a put runs past its tier's maxFlightSize before it spills (see spillLeeway). */
const MAX_SPILL_LEEWAY = 64 * 1024 * 1024;

/**
 * How far past maxFlightSize a put into tier `index` may run before it spills there and
 * then: an eighth of maxFlightSize, at most 64 MiB, in a tier with `uploadSpill: spill` and
 * a tier below it (else 0). A put that ends within it is acknowledged from this tier and
 * moved down right after (`overMax`), so the client does not wait for a copy of everything
 * it sent, the common case of a flight just over the limit (a table of exactly
 * maxFlightSize is a few KiB over it, framed). One that runs past it spills as it arrives.
 */
export function spillLeeway(tiers: readonly TierConfig[], index: number): number {
  const tier = tiers[index];
  if (tier?.maxFlightSize === undefined || tier.uploadSpill !== 'spill' || index + 1 >= tiers.length) return 0;
  return Math.min(Math.floor(tier.maxFlightSize / 8), MAX_SPILL_LEEWAY);
}

/**
 * Whether a copy holds more than its tier's maxFlightSize and has a tier below to go to:
 * a put that ended within the spill leeway, or a copy whose tier's limit a reload lowered.
 * Such a copy is due to move down now (Ledger.dueMoves).
 */
export function overMax(tiers: readonly TierConfig[], index: number, bytes: number): boolean {
  const max = tiers[index]?.maxFlightSize;
  return max !== undefined && bytes > max && index + 1 < tiers.length;
}
