import { createWriteStream, readFileSync, statSync } from 'node:fs';
import { Command } from 'commander';
import { formatDelay, withoutRetryWords } from '../../errors.js';
import type { FlightClient } from '../../client/flight-client.js';
import { encapsulatedMessages, type IpcMessage } from '../../ipc/ipc-stream.js';
import {
  connect,
  DEFAULT_SERVER,
  describeError,
  exitCodeOf,
  RETRY_ATTEMPTS,
  retryWait,
  NothingThere,
  UsageError,
  type ConnectOptions,
} from './connect.js';
import { clusterTable, exactBytes, humanBytes, statsTable, table, type BytesFormat } from './tables.js';
import { csvMessages, ipcToCsv, parquetMessages } from './formats.js';
import { counted, progress } from './progress.js';
import { confirm, fileMessages, isIpcFile, jobProgress, print, readAll, summary, toIpcFile, write } from './io.js';

/**
 * `tierflight admin`: the command-line Flight client for operators (DESIGN §6), built on
 * the typed client in src/client. Every command takes the connection options, prints a
 * readable answer (or JSON with --json), fails with one line naming the path and the gRPC
 * status, and exits 0, 1 (failed), 2 (usage), 3 (not found), 4 (not allowed) or 5
 * (server unavailable).
 */
export function adminCommand(): Command {
  const admin = new Command('admin')
    .description(
      'the Flight client for operators: ls, info, get, put, rm, stats, cluster, reserve, release, pin, unpin, backfill, prefetch',
    )
    .option('--server <uri>', 'the Tierflight server', DEFAULT_SERVER)
    .option('--tls-ca <file>', 'CA certificate (PEM) to trust; implies TLS')
    .option('--cert <file>', 'client certificate (PEM) for mutual TLS')
    .option('--key <file>', 'key (PEM) of the client certificate')
    .option('--user <name>', 'log in as this user; the password comes from $TIERFLIGHT_PASSWORD or a prompt')
    .option('--json', 'machine-readable output')
    .option('--bytes', 'sizes in exact bytes (the default when the output is not a terminal)')
    .showHelpAfterError();

  /**
   * A command's action. A `rerunnable` command (one that only reads, or sets what it sets
   * again harmlessly) follows the server's "retry here" hint (`x-tierflight-retry`: a
   * server still starting, a store down for a moment): it says so on stderr, waits what
   * the server asked (at most RETRY_WAIT_MS) and tries again, RETRY_ATTEMPTS tries in all.
   */
  const run =
    <A extends unknown[]>(
      name: string,
      target: (...args: A) => string | undefined,
      body: Body<A>,
      { rerunnable = false }: { rerunnable?: boolean } = {},
    ) =>
    async (...args: [...A, Record<string, unknown>, Command]): Promise<void> => {
      // grpc-js names IP addresses as TLS server names, which Node warns about on every
      // connection; an operator's terminal (and a script reading stderr) needs only our line.
      process.noDeprecation = true;
      const command = args[args.length - 1] as Command;
      const opts = command.optsWithGlobals<ConnectOptions & Record<string, unknown>>();
      const positional = args.slice(0, -2) as unknown as A;
      let client: FlightClient | undefined;
      try {
        client = await connect(opts);
        for (let attempt = 1; ; attempt++) {
          try {
            await body(client, opts, ...positional);
            break;
          } catch (err) {
            const wait = rerunnable && attempt < RETRY_ATTEMPTS ? retryWait(err) : undefined;
            if (wait === undefined) throw err;
            process.stderr.write(
              `${withoutRetryWords(describeError(name, target(...positional), err, opts.server))}; retrying in ${formatDelay(wait)} ` +
                `(try ${attempt + 1} of ${RETRY_ATTEMPTS})\n`,
            );
            await new Promise((resolve) => setTimeout(resolve, wait));
          }
        }
      } catch (err) {
        process.stderr.write(`${describeError(name, target(...positional), err, opts.server)}\n`);
        process.exitCode = exitCodeOf(err);
      } finally {
        client?.close();
      }
    };

  admin
    .command('ls')
    .description('list flights under a prefix (whole segments)')
    .argument('[prefix]', 'path prefix', '')
    .action(
      run(
        'ls',
        (prefix: string) => prefix || undefined,
        async (client, opts, prefix: string) => {
          const flights = await client.listFlights(prefix);
          if (opts.json) return print(flights.map(summary));
          print(
            table(
              ['path', 'rows', 'bytes', 'updated'],
              flights.map((f) => {
                const s = summary(f);
                return [s.path, String(s.rows), sizesFor(opts)(s.bytes), s.updatedAt ?? ''];
              }),
            ),
          );
        },
        { rerunnable: true },
      ),
    );

  admin
    .command('info')
    .description("a flight's rows, bytes, endpoints, creation and update times and owner")
    .argument('<path>')
    .action(
      run(
        'info',
        (p: string) => p,
        async (client, opts, path: string) => {
          const info = await client.getFlightInfo(path);
          const s = { ...summary(info), endpoints: info.endpoints.map((e) => ({ locations: e.locations })) };
          if (opts.json) return print(s);
          print(
            table(
              ['field', 'value'],
              [
                ['path', s.path],
                ['rows', String(s.rows)],
                ['bytes', sizesFor(opts)(s.bytes)],
                ['created', s.createdAt ?? ''],
                ['updated', s.updatedAt ?? ''],
                ['owner', s.owner ?? ''],
                ['pinned', s.pinned ? 'yes' : 'no'],
                ['endpoints', String(s.endpoints.length)],
                // A partitioned dataset: its partitions, in order, and where each is read.
                ...(s.partitions !== undefined
                  ? [
                      ['partitions', String(s.partitions)],
                      ...s.endpoints.map((e, i) => [`partition ${i}`, e.locations.join(', ') || '(this server)']),
                    ]
                  : []),
              ],
            ),
          );
        },
        { rerunnable: true },
      ),
    );

  admin
    .command('get')
    .description('read a flight as an Arrow IPC stream (default) or file, or CSV, to a file or stdout')
    .argument('<path>')
    .option('-o, --output <file>', 'write here instead of stdout')
    .option('--format <format>', 'stream (.arrows), file (.arrow) or csv', 'stream')
    .option('--csv', 'the same as --format csv')
    .action(
      run(
        'get',
        (p: string) => p,
        async (client, opts, path: string) => {
          const format = opts.csv ? 'csv' : String(opts.format);
          if (!['stream', 'file', 'csv'].includes(format)) throw new UsageError('--format is stream, file or csv');
          const total = (await client.getFlightInfo(path)).totalBytes;
          const bar = progress(`get ${path}`, total, opts);
          const stream = await client.getStream(path, (bytes) => bar.add(bytes));
          bar.done();
          const bytes =
            format === 'stream'
              ? stream
              : format === 'file'
                ? await toIpcFile(stream)
                : Buffer.from(await ipcToCsv(stream));
          const out = opts.output ? createWriteStream(String(opts.output)) : process.stdout;
          await write(out, bytes);
          if (opts.output && opts.json) print({ path, file: opts.output, bytes: bytes.length });
        },
      ),
    );

  admin
    .command('put')
    .description('write an Arrow IPC stream or file, a CSV or a Parquet file as the flight at a path')
    .argument('<file>', 'Arrow IPC stream (.arrows) or file (.arrow), CSV (.csv) or Parquet (.parquet); - for stdin')
    .argument('<path>')
    .option('--format <format>', 'ipc, csv or parquet (default: from the file name, else ipc)')
    .action(
      run(
        'put',
        (_f: string, p: string) => p,
        async (client, opts, file: string, path: string) => {
          const byName = /\.csv$/i.test(file) ? 'csv' : /\.parquet$/i.test(file) ? 'parquet' : 'ipc';
          const format = String(opts.format ?? byName);
          if (!['ipc', 'csv', 'parquet'].includes(format)) throw new UsageError('--format is ipc, csv or parquet');
          const stdin = file === '-';
          let messages: AsyncIterable<IpcMessage> | IpcMessage[];
          if (format === 'csv') {
            messages = csvMessages(file, stdin ? process.stdin : undefined);
          } else {
            const bytes = stdin ? await readAll(process.stdin) : readFileSync(file);
            messages =
              format === 'parquet'
                ? await parquetMessages(bytes)
                : isIpcFile(bytes)
                  ? await fileMessages(bytes)
                  : encapsulatedMessages(bytes);
            if (messages.length === 0) throw new UsageError(`${file} holds no Arrow IPC messages`);
          }
          const size = stdin ? undefined : statSync(file).size;
          const bar = progress(`put ${path}`, format === 'ipc' ? size : undefined, opts);
          await client.doPut(path, counted(messages, bar));
          bar.done();
          const info = await client.getFlightInfo(path);
          if (opts.json) print(summary(info));
          else print(`${path}: ${info.totalRecords} rows, ${info.totalBytes} bytes`);
        },
      ),
    );

  admin
    .command('rm')
    .description('remove a flight, or with -r every flight under a prefix (durable copies too)')
    .argument('<path>')
    .option('-r, --recursive', 'remove everything under the prefix')
    .option('-y, --yes', 'do not ask (needed with -r when not on a terminal)')
    .action(
      run(
        'rm',
        (p: string) => p,
        async (client, opts, path: string) => {
          if (!opts.recursive) {
            const [answer] = await client.action<{ deleted: boolean }>('delete', { path });
            if (!answer?.deleted) throw new NothingThere(`flight "${path}" not found`);
            return print(opts.json ? answer : `removed ${path}`);
          }
          if (!opts.yes) {
            if (!process.stdin.isTTY) throw new UsageError('rm -r removes every flight under the prefix: add --yes');
            if (!(await confirm(`remove every flight under "${path || '/'}", durable copies included? [y/N] `))) {
              throw new UsageError('not confirmed');
            }
          }
          const [answer] = await client.action<{ deleted: number }>('delete-prefix', {
            prefix: path,
            ...(path === '' || path === '/' ? { all: true } : {}),
          });
          print(opts.json ? answer : `removed ${answer?.deleted ?? 0} flight(s) under ${path || '/'}`);
        },
      ),
    );

  admin
    .command('stats')
    .description('storage types, classes, limits, uploads and reservations')
    .action(
      run(
        'stats',
        () => undefined,
        async (client, opts) => {
          const [stats] = await client.action<Record<string, unknown>>('stats');
          print(opts.json ? stats : statsTable(stats ?? {}, sizesFor(opts)));
        },
        { rerunnable: true },
      ),
    );

  admin
    .command('cluster')
    .description('the cluster members, their state, and the flights and bytes each holds')
    .action(
      run(
        'cluster',
        () => undefined,
        async (client, opts) => {
          const [report] = await client.action<Record<string, unknown>>('cluster');
          print(opts.json ? report : clusterTable(report ?? {}, sizesFor(opts)));
        },
        { rerunnable: true },
      ),
    );

  admin
    .command('reserve')
    .description('reserve a missing flight to compute it (cache-fill coordination)')
    .argument('<path>')
    .requiredOption('--owner <owner>', 'who computes it')
    .option('--heartbeat <seconds>', 'heartbeat; the reservation lasts 3 of them', '30')
    .action(
      run(
        'reserve',
        (p: string) => p,
        async (client, opts, path: string) => {
          const heartbeatSeconds = Number(opts.heartbeat);
          if (!(heartbeatSeconds > 0)) throw new UsageError('--heartbeat is a number of seconds');
          const [answer] = await client.action<{ status: string; owner: string; expiresAt: string }>('reserve', {
            path,
            owner: opts.owner,
            heartbeatSeconds,
          });
          print(opts.json ? answer : `${answer?.status} by ${answer?.owner} until ${answer?.expiresAt}`);
          if (answer?.status === 'held') process.exitCode = 1;
        },
      ),
    );

  admin
    .command('release')
    .description('release your reservation of a path')
    .argument('<path>')
    .requiredOption('--owner <owner>', 'whose reservation')
    .action(
      run(
        'release',
        (p: string) => p,
        async (client, opts, path: string) => {
          const [answer] = await client.action<{ released: boolean }>('release', { path, owner: opts.owner });
          print(opts.json ? answer : answer?.released ? `released ${path}` : `${path} is held by another owner`);
          if (!answer?.released) process.exitCode = 1;
        },
      ),
    );

  for (const kind of ['backfill', 'prefetch'] as const) {
    admin
      .command(kind)
      .description(
        kind === 'backfill'
          ? "write durable copies of a class's flights that lack one (a job; progress as it goes)"
          : 'restore the durable-only flights under a prefix into their first tier (a job)',
      )
      .argument(kind === 'backfill' ? '<class>' : '<prefix>')
      .option('--concurrency <n>', 'uploads or restores at once', '4')
      .option('--resume <checkpoint>', 'backfill: continue from a checkpoint (RFC 3339) a previous run reported')
      .option('--cutoff <time>', 'backfill: only flights created at or before this time (RFC 3339)')
      .option('--attach <id>', 'follow a running job instead of starting one')
      .action(
        run(
          kind,
          (t: string) => t,
          async (client, opts, target: string) => {
            const body = opts.attach
              ? { id: opts.attach }
              : {
                  ...(kind === 'backfill' ? { class: target } : { prefix: target }),
                  concurrency: Number(opts.concurrency),
                  ...(opts.resume ? { resume: opts.resume } : {}),
                  ...(opts.cutoff ? { cutoff: opts.cutoff } : {}),
                };
            const bar = jobProgress(kind, opts);
            let last: Record<string, unknown> = {};
            for await (const result of client.doAction(opts.attach ? 'backfill-status' : kind, body)) {
              last = JSON.parse(result.toString('utf8')) as Record<string, unknown>;
              bar(last);
            }
            if (Number(last.failed ?? 0) > 0) process.exitCode = 1;
          },
        ),
      );
  }

  for (const verb of ['pin', 'unpin'] as const) {
    admin
      .command(verb)
      .description(verb === 'pin' ? 'pin a flight: never evicted or moved down' : 'unpin a flight')
      .argument('<path>')
      .action(
        run(
          verb,
          (p: string) => p,
          async (client, opts, path: string) => {
            const [answer] = await client.action<Record<string, boolean>>(verb, { path });
            print(
              opts.json
                ? answer
                : `${verb === 'pin' ? 'pinned' : answer?.unpinned ? 'unpinned' : 'was not pinned:'} ${path}`,
            );
          },
          { rerunnable: true },
        ),
      );
  }

  return admin;
}

type Body<A extends unknown[]> = (
  client: FlightClient,
  opts: ConnectOptions & Record<string, unknown>,
  ...args: A
) => Promise<unknown>;

/** Human units for a person at a terminal; exact bytes with --bytes, or for a script reading the output. */
function sizesFor(opts: Record<string, unknown>): BytesFormat {
  return opts.bytes === true || !process.stdout.isTTY ? exactBytes : humanBytes;
}
