import cliProgress from 'cli-progress';
import { bodyLength } from '../../ipc/frame.js';

/** Bytes moved so far out of a total (when known), shown while a put or get runs. */
export interface Progress {
  add(bytes: number): void;
  done(): void;
}

const KIB = 1024;
const MIB = 1024 * 1024;

/**
 * On a terminal, a progress bar (cli-progress) on stderr; elsewhere a plain line every
 * second and one at the end, so logs of scripted runs show it too; nothing with --json.
 */
export function progress(
  label: string,
  total: number | undefined,
  options: { json?: boolean },
  kind: 'bytes' | 'flights' = 'bytes',
): Progress {
  // A transfer under a MiB counts in KiB: "12.5 KiB of 40.0 KiB", never "0.0 MiB of 0.0 MiB".
  const unit = kind === 'flights' ? 'flights' : total !== undefined && total < MIB ? 'KiB' : 'MiB';
  const scale = unit === 'MiB' ? MIB : unit === 'KiB' ? KIB : 1;
  const digits = unit === 'flights' ? 0 : 1;
  if (options.json) return { add: () => undefined, done: () => undefined };
  let moved = 0;
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {percentage}% | {movedMiB}/{totalMiB} ${unit} | {speed} ${unit}/s`,
        stream: process.stderr,
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    const started = Date.now();
    const payload = () => ({
      movedMiB: (moved / scale).toFixed(digits),
      totalMiB: total === undefined ? '?' : (total / scale).toFixed(digits),
      speed: (moved / scale / Math.max(0.001, (Date.now() - started) / 1000)).toFixed(1),
    });
    bar.start(Math.max(1, total ?? 1), 0, payload());
    return {
      add: (bytes) => {
        moved += bytes;
        bar.update(Math.min(moved, total ?? moved), payload());
      },
      done: () => {
        bar.update(total ?? moved, payload());
        bar.stop();
      },
    };
  }
  let last = Date.now();
  const line = () =>
    process.stderr.write(
      `${label}: ${(moved / scale).toFixed(digits)} ${unit}${total === undefined ? '' : ` of ${(total / scale).toFixed(digits)} ${unit}`}\n`,
    );
  return {
    add: (bytes) => {
      moved += bytes;
      if (Date.now() - last >= 1000) {
        last = Date.now();
        line();
      }
    },
    done: line,
  };
}

/** Counts the bytes of the messages an iterable yields into a progress. */
export async function* counted<T extends { header: Buffer; body: Buffer }>(
  messages: AsyncIterable<T> | Iterable<T>,
  p: Progress,
): AsyncGenerator<T> {
  for await (const m of messages) {
    p.add(m.header.length + bodyLength(m));
    yield m;
  }
}
