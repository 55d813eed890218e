import { describe, expect, it } from 'vitest';
import { formatExactDuration, formatExactSize, parseDuration, parseSize } from '../../src/config/units.js';

describe('exact sizes and durations (tierflight route)', () => {
  it.each([
    ['1500KiB', '1500KiB'],
    ['64MiB', '64MiB'],
    ['1GiB', '1GiB'],
    ['1025', '1025B'],
    ['5GB', '5000000000B'],
  ])('prints the size %s as %s, never rounded', (input, shown) => {
    expect(formatExactSize(parseSize(input)!)).toBe(shown);
  });

  it.each([
    ['36h', '36h'],
    ['7d', '7d'],
    ['90s', '90s'],
    ['1500ms', '1500ms'],
    ['2w', '14d'],
  ])('prints the duration %s as %s, never rounded', (input, shown) => {
    expect(formatExactDuration(parseDuration(input)!)).toBe(shown);
  });
});
