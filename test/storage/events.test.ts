import { describe, expect, it } from 'vitest';
import { PlacementEvents, type PlacementEvent } from '../../src/storage/events.js';

describe('placement events', () => {
  it('reach every subscriber in order, survive a subscriber that throws, and stop after unsubscribing', () => {
    const errors: string[] = [];
    const events = new PlacementEvents((err) => errors.push((err as Error).message));
    const seen: string[] = [];
    events.subscribe((e) => seen.push(`a:${e.type}`));
    const stop = events.subscribe(() => {
      throw new Error('broken subscriber');
    });
    events.subscribe((e) => seen.push(`c:${e.type}`));
    const miss: PlacementEvent = { type: 'miss', path: 'x' };
    events.emit(miss);
    stop();
    events.emit(miss);
    expect(seen).toEqual(['a:miss', 'c:miss', 'a:miss', 'c:miss']);
    expect(errors).toEqual(['broken subscriber']);
  });
});
