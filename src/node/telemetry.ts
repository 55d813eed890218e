import { context, propagation, trace } from '@opentelemetry/api';
import type { Logger } from '../core/log.js';
import { setTracing } from '../core/trace.js';
import { VERSION } from '../version.js';

/**
 * OpenTelemetry traces, configured by the standard OTEL_* environment variables (DESIGN §9)
 * and off unless they ask for it:
 *
 * - on when `OTEL_TRACES_EXPORTER` is `otlp` or `console`, or (unset) when an OTLP endpoint
 *   is given (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); off
 *   with `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`;
 * - `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`: `http/protobuf` (the default), `http/json` or
 *   `grpc`; endpoint, headers, timeout and compression are read by the exporter itself;
 * - `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`: the spec's samplers (default
 *   `parentbased_always_on`: a caller's sampled flag is followed);
 * - `OTEL_SERVICE_NAME` (default `tierflight`) and `OTEL_RESOURCE_ATTRIBUTES`;
 * - `OTEL_BSP_*`: the batch span processor's queue and delays.
 *
 * Trace context travels as W3C `traceparent`/`tracestate` headers, taken from each call and
 * sent on every node-to-node call. The SDK packages are loaded only when tracing is on.
 */
export interface Telemetry {
  /** What tracing does, for the start line: off, or the exporter and where it sends. */
  readonly describe: string;
  /** Sends what is buffered and stops (the server's last step). */
  shutdown(): Promise<void>;
}

const OFF: Telemetry = { describe: 'off', shutdown: async () => undefined };

type Env = NodeJS.ProcessEnv;
const env = (e: Env, name: string): string | undefined => {
  const v = e[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
};

/** Which exporter the environment asks for, or undefined for none. */
function tracesExporter(e: Env = process.env): 'otlp' | 'console' | undefined {
  if (env(e, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return undefined;
  const named = env(e, 'OTEL_TRACES_EXPORTER')?.split(',')[0]?.trim().toLowerCase();
  if (named === 'none') return undefined;
  if (named === 'otlp' || named === 'console') return named;
  if (named !== undefined) throw new Error(`OTEL_TRACES_EXPORTER "${named}" is not one of otlp, console, none`);
  return env(e, 'OTEL_EXPORTER_OTLP_ENDPOINT') || env(e, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ? 'otlp' : undefined;
}

/**
 * Registers the tracing SDK when the environment asks for it. `instance` names this node
 * (`service.instance.id`: the cluster member name, or the listen address).
 */
export async function startTelemetry(instance: string, log: Logger, e: Env = process.env): Promise<Telemetry> {
  const exporterKind = tracesExporter(e);
  if (!exporterKind) return OFF;
  const [sdk, core, resources, hooks] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/core'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/context-async-hooks'),
  ]);
  const protocol =
    env(e, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? env(e, 'OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf';
  let exporter: InstanceType<typeof sdk.ConsoleSpanExporter> | { export: unknown; shutdown(): Promise<void> };
  let where: string;
  if (exporterKind === 'console') {
    exporter = new sdk.ConsoleSpanExporter();
    where = 'console';
  } else {
    const endpoint =
      env(e, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ?? env(e, 'OTEL_EXPORTER_OTLP_ENDPOINT') ?? '(the default endpoint)';
    if (protocol === 'grpc') {
      exporter = new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter();
    } else if (protocol === 'http/json') {
      exporter = new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
    } else if (protocol === 'http/protobuf') {
      exporter = new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter();
    } else {
      throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL "${protocol}" is not one of http/protobuf, http/json, grpc`);
    }
    where = `otlp ${protocol} to ${endpoint}`;
  }
  const resource = resources.defaultResource().merge(
    resources.resourceFromAttributes({
      'service.name': 'tierflight',
      'service.version': VERSION,
      'service.instance.id': instance,
    }),
  );
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over ours.
  const detected = resources.detectResources({ detectors: [resources.envDetector] });
  const provider = new sdk.TracerProvider({
    resource: resource.merge(detected),
    sampler: samplerFrom(sdk, e),
    spanProcessors: [
      new sdk.BatchSpanProcessor({
        exporter: exporter as never,
        maxQueueSize: num(e, 'OTEL_BSP_MAX_QUEUE_SIZE', 2048),
        maxExportBatchSize: num(e, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512),
        scheduledDelayMillis: num(e, 'OTEL_BSP_SCHEDULE_DELAY', 5000),
        exportTimeoutMillis: num(e, 'OTEL_BSP_EXPORT_TIMEOUT', 30000),
      }),
    ],
  });
  const contextManager = new hooks.AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(
    new core.CompositePropagator({
      propagators: [new core.W3CTraceContextPropagator(), new core.W3CBaggagePropagator()],
    }),
  );
  trace.setGlobalTracerProvider(provider);
  setTracing(true);
  log.info({ traces: where }, 'tracing on');
  return {
    describe: where,
    async shutdown() {
      setTracing(false);
      await provider.shutdown().catch((err: unknown) => {
        log.warn({ err: (err as Error).message }, 'tracing: the last spans could not be sent');
      });
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}

function num(e: Env, name: string, fallback: number): number {
  const v = Number(env(e, name));
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

type Sdk = typeof import('@opentelemetry/sdk-trace');

/** The sampler the spec's OTEL_TRACES_SAMPLER names (default parentbased_always_on). */
function samplerFrom(sdk: Sdk, e: Env) {
  const name = env(e, 'OTEL_TRACES_SAMPLER')?.toLowerCase() ?? 'parentbased_always_on';
  const arg = Number(env(e, 'OTEL_TRACES_SAMPLER_ARG') ?? 1);
  const ratio = new sdk.TraceIdRatioBasedSampler(Number.isFinite(arg) && arg >= 0 && arg <= 1 ? arg : 1);
  switch (name) {
    case 'always_on':
      return new sdk.AlwaysOnSampler();
    case 'always_off':
      return new sdk.AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_on':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new sdk.ParentBasedSampler({ root: ratio });
    default:
      throw new Error(
        `OTEL_TRACES_SAMPLER "${name}" is not one of always_on, always_off, traceidratio, ` +
          'parentbased_always_on, parentbased_always_off, parentbased_traceidratio',
      );
  }
}
