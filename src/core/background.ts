/**
 * Work started without being awaited (moves, promotions): tracked, so a caller can wait
 * until none is running (housekeeping, shutdown, tests).
 */
export class Background {
  private readonly running = new Set<Promise<unknown>>();

  run(work: Promise<unknown>): void {
    this.running.add(work);
    void work.finally(() => this.running.delete(work)).catch(() => undefined);
  }

  /** Resolves when nothing started here is still running (work started meanwhile included). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
