/** Waits `ms` without keeping the process alive for it (background retries and backoff). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
