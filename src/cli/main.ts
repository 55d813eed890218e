#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=33554432 node --initial-old-space-size=256 --external-memory-accounted-in-global-limit --heap-growing-percent=100 --expose-gc
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { startNode } from '../node/start.js';
import { configJsonSchema } from '../config/json-schema.js';
import { ConfigError, loadConfigFile, spoolDirectory } from '../config/load.js';
import { securityWarnings } from '../config/security.js';
import type { Config } from '../config/schema.js';
import { createLogger, logOptionsProblem } from '../core/log.js';
import { startTelemetry } from '../node/telemetry.js';
import { SERVE_ENV, SERVE_ENV_WORDS, SERVE_NODE_FLAGS } from './node-flags.js';
import { VERSION } from '../version.js';
import { describeRoute } from './route.js';
import { reloadServer } from './reload.js';
import { DirectoryInUseError, DirectoryUnusableError } from '../core/directory-lock.js';
import { adminCommand } from './admin/admin.js';
import { readPassword } from './password.js';
import { defaultWorkers, superviseWorkers, workerConfig } from './workers.js';
import { hashPassword } from '../auth/passwords.js';

/** The embedded default config that `npm start` serves with. */
export const DEFAULT_CONFIG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../config/default.yaml');

const program = new Command()
  .name('tierflight')
  .description('Tiered Arrow Flight storage server')
  .version(VERSION)
  .showHelpAfterError();

program
  .command('serve', { isDefault: true })
  .description('run the Flight server')
  .option('-c, --config <file>', 'config file (default: $TIERFLIGHT_CONFIG or the embedded config/default.yaml)')
  .option('--listen <host:port>', 'override server.listen')
  .option('--metrics <host:port>', 'override server.metrics (the /metrics, /healthz, /readyz address)')
  .option(
    '--workers [n]',
    'run N processes as a local cluster on the listen port and the next ones (no number: one per core)',
  )
  .option('--log-format <format>', 'json or pretty (default: pretty on a terminal, else json)')
  .option(
    '--log-level <level>',
    'fatal, error, warn, info, debug, trace or silent (default: $TIERFLIGHT_LOG_LEVEL or info)',
  )
  .addOption(new Option('--worker <i/n>', 'internal: run as worker i of n').hideHelp())
  .action(
    async (opts: {
      config?: string;
      listen?: string;
      metrics?: string;
      workers?: string | true;
      worker?: string;
      logFormat?: string;
      logLevel?: string;
    }) => {
      const logOptions = { format: opts.logFormat, level: opts.logLevel };
      const problem = logOptionsProblem(logOptions);
      if (problem !== undefined) {
        // A usage error (exit 2), in one line: the whole help would hide it.
        process.stderr.write(`error: ${problem}\n`);
        process.exit(2);
      }
      const logger = createLogger(logOptions);
      const file = opts.config ?? process.env.TIERFLIGHT_CONFIG ?? DEFAULT_CONFIG;
      let config;
      try {
        config = loadConfigFile(file).config;
      } catch (err) {
        fail(err);
      }
      const workers = opts.workers === undefined ? 1 : opts.workers === true ? defaultWorkers() : Number(opts.workers);
      if (!Number.isInteger(workers) || workers < 1)
        fail(new Error(`--workers needs a whole number of processes, got "${String(opts.workers)}"`));
      const worker = opts.worker === undefined ? undefined : (opts.worker.split('/').map(Number) as [number, number]);
      const overrides = (c: Config): Config => {
        const local: Config = {
          ...c,
          server: {
            ...c.server,
            ...(opts.listen ? { listen: opts.listen } : {}),
            ...(opts.metrics ? { metrics: opts.metrics } : {}),
          },
        };
        return worker ? workerConfig(local, worker[0], worker[1]) : local;
      };
      try {
        config = overrides(config);
      } catch (err) {
        fail(err);
      }
      if (workers > 1 && !worker) {
        const args = ['serve', '--config', file];
        if (opts.listen) args.push('--listen', opts.listen);
        if (opts.metrics) args.push('--metrics', opts.metrics);
        if (opts.logFormat) args.push('--log-format', opts.logFormat);
        if (opts.logLevel) args.push('--log-level', opts.logLevel);
        // Each worker builds its config the same way; a broken one is refused here, once.
        try {
          workerConfig(config, 0, workers);
        } catch (err) {
          fail(err);
        }
        superviseWorkers(workers, args, logger);
        return;
      }
      logger.info({ config: file, ...(worker ? { worker: worker[0] } : {}) }, 'starting');
      for (const warning of securityWarnings(config)) logger.warn({ config: file }, warning);
      if (typeof (globalThis as { gc?: unknown }).gc !== 'function') {
        logger.warn(
          { execArgv: process.execArgv },
          `Node was started without ${SERVE_NODE_FLAGS.join(' ')} (npm start, the tierflight command and the ` +
            'Docker image pass them): V8 collects every 64 MiB received, and DoPut is slower',
        );
      }
      const unset = Object.entries(SERVE_ENV).filter(([k]) => process.env[k] === undefined);
      if (unset.length > 0) {
        logger.warn(
          `Node was started without ${SERVE_ENV_WORDS} in its environment (npm start, the tierflight command and ` +
            'the Docker image set it): the memory of flights that go is returned to the kernel and faulted in again, and DoPut is slower',
        );
      }
      let app;
      let telemetry;
      try {
        // OTEL_* variables (off unless they ask for traces); a bad one stops the start here.
        telemetry = await startTelemetry(config.cluster?.self ?? config.server.listen, logger);
        app = await startNode(config, logger, undefined, { configFile: file, overrides });
      } catch (err) {
        // One line saying what to do; the stack only for what Tierflight did not expect.
        const expected = isStartRefusal(err);
        logger.fatal(expected ? { err: (err as Error).message } : { err }, 'cannot start');
        process.stderr.write(`tierflight: cannot start with ${file}: ${(err as Error).message}\n`);
        process.exit(1);
      }
      const stats = app.manager.stats();
      logger.info(
        {
          version: VERSION,
          node: process.version,
          // The process to signal (SIGHUP reloads, SIGTERM stops): under npm start it is not npm's.
          pid: process.pid,
          config: file,
          listen: config.server.listen,
          metrics: config.server.metrics,
          ...(app.spool !== undefined ? { spool: app.spool } : {}),
          classes: config.storageClasses.map((c) => c.name),
          flights: stats.flights,
          degradedStores: app.manager.degradedStores,
          grpcInternals: app.flight.internals,
          traces: telemetry.describe,
        },
        'Tierflight ready',
      );
      let stopping = false;
      const shutdown = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'shutting down');
        void app
          .stop()
          .then(() => telemetry.shutdown())
          .then(() => process.exit(0));
      };
      // Writing past a file size limit (ulimit -f) must fail that write (EFBIG, reported to
      // the client as a full disk), not kill the server with SIGXFSZ.
      process.on('SIGXFSZ', () => undefined);
      process.on('SIGHUP', () => {
        logger.info({ config: file }, 'SIGHUP: reloading the config');
        app.reload();
      });
      process.on('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGTERM', () => shutdown('SIGTERM'));
    },
  );

program
  .command('reload')
  .description('send SIGHUP to the server running with a config (found by the folders it holds), so it reloads it')
  .option('-c, --config <file>', 'config file (default: $TIERFLIGHT_CONFIG or the embedded config/default.yaml)')
  .action((opts: { config?: string }) => {
    const file = opts.config ?? process.env.TIERFLIGHT_CONFIG ?? DEFAULT_CONFIG;
    try {
      const pids = reloadServer(loadConfigFile(file, { files: false }).config, file, (pid) =>
        process.kill(pid, 'SIGHUP'),
      );
      process.stdout.write(`sent SIGHUP to ${pids.map((p) => `pid ${p}`).join(', ')} (the server running ${file})\n`);
    } catch (err) {
      fail(err);
    }
  });

program
  .command('validate')
  .description('check a config file and report every problem with its line and column')
  .argument('<file>')
  .action((file: string) => {
    try {
      const { config } = loadConfigFile(file);
      process.stdout.write(
        `${file}: OK (${config.storageClasses.length} storage classes, ${config.limitPolicies.length} limit policies)\n`,
      );
      for (const warning of securityWarnings(config)) process.stdout.write(`warning: ${warning}\n`);
      const spool = spoolDirectory(config);
      if (spool !== undefined) {
        const source = config.server.spool !== undefined ? 'server.spool' : 'the default for this node';
        process.stdout.write(`spool: ${spool} (${source})\n`);
      }
    } catch (err) {
      fail(err);
    }
  });

program
  .command('route')
  .description('show which class, tiers and limits apply to a flight path')
  .argument('<file>')
  .argument('<path>')
  .action((file: string, flightPath: string) => {
    try {
      process.stdout.write(describeRoute(loadConfigFile(file, { files: false }).config, flightPath));
    } catch (err) {
      fail(err);
    }
  });

program
  .command('schema')
  .description('print the JSON Schema of the config file (for editors; config/tierflight.schema.json)')
  .action(() => {
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  });

program
  .command('hash-password')
  .description(
    'print an argon2id hash for auth.users[].passwordHash; the password comes from $TIERFLIGHT_PASSWORD, a prompt, or stdin',
  )
  .action(async () => {
    try {
      const password = await readPassword();
      if (password.length < 8) throw new Error('use a password of at least 8 characters');
      process.stdout.write(`${await hashPassword(password)}\n`);
    } catch (err) {
      fail(err);
    }
  });

program.addCommand(adminCommand());

/** A refusal to start the operator can act on (a folder, a port, a file, a store): no stack needed. */
function isStartRefusal(err: unknown): boolean {
  return (
    err instanceof DirectoryInUseError ||
    err instanceof DirectoryUnusableError ||
    err instanceof ConfigError ||
    (err instanceof Error && /^(cannot listen on|server\.tls\.|cannot create the)/.test(err.message))
  );
}

function fail(err: unknown): never {
  process.stderr.write(`${err instanceof ConfigError ? err.message : `error: ${(err as Error).message}`}\n`);
  process.exit(1);
}

/**
 * A command used wrongly (a missing argument, an unknown command or option) exits 2, as the
 * README says; help and --version exit 0. Subcommands added whole (admin) get it too.
 */
function usageExits(command: Command): void {
  command.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
  for (const sub of command.commands) usageExits(sub);
}
usageExits(program);

// `serve` is the default command, so an unknown word would otherwise read as its argument.
const first = process.argv[2];
if (
  first !== undefined &&
  first !== 'help' &&
  !first.startsWith('-') &&
  !program.commands.some((c) => c.name() === first)
) {
  process.stderr.write(`error: unknown command '${first}' (see tierflight --help)\n`);
  process.exit(2);
}

await program.parseAsync();
