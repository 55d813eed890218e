import {
  context,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
} from '@opentelemetry/api';
import { VERSION } from '../version.js';

/**
 * Tracing through the OpenTelemetry API (DESIGN §9). The API alone does nothing: spans are
 * recorded only once node/telemetry.ts has registered the SDK (OTEL_* variables), and until
 * then every helper here returns at its first check, so a server without tracing pays a
 * boolean test per call. Child spans are made only inside a traced call, never as roots for
 * background work (weak uploads, sweeps), which would flood a backend with lone spans.
 */
export { SpanKind, type Span };

let enabled = false;

/** Called by node/telemetry.ts once the SDK is registered (and with false when it stops). */
export function setTracing(on: boolean): void {
  enabled = on;
}

export function tracing(): boolean {
  return enabled;
}

const tracer = () => trace.getTracer('tierflight', VERSION);

/** Sets attributes on the current span, when there is one; `attributes` is not called otherwise (hot paths). */
export function annotate(attributes: () => Attributes): void {
  if (!enabled) return;
  trace.getActiveSpan()?.setAttributes(attributes());
}

function failed(span: Span, err: unknown): void {
  span.recordException(err as Error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message ?? String(err) });
}

/**
 * Runs `fn` in a child span of the current one: what a call waits on (a durable store
 * request, a restore, a call to another node, a reservation wait, a job's item). Outside
 * a traced call it just runs `fn`.
 */
export async function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span | undefined) => Promise<T>,
  kind: SpanKind = SpanKind.INTERNAL,
): Promise<T> {
  if (!enabled) return fn(undefined);
  const parent = trace.getActiveSpan();
  if (!parent?.isRecording()) return fn(undefined);
  return tracer().startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      failed(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/** Adds `traceparent`/`tracestate` of the current span to headers for a call to another node. */
export function withTraceContext(headers: Record<string, string>): Record<string, string> {
  if (!enabled) return headers;
  const out = { ...headers };
  propagation.inject(context.active(), out);
  return out;
}

/**
 * A server span for a call, child of the trace context its caller sent (W3C `traceparent`
 * and `tracestate`, read through `getter` from the call's headers), or a new trace. Returns
 * the context to run the call in and a function that ends the span with the call's status.
 */
export function serverSpan<C>(
  name: string,
  carrier: C,
  getter: TextMapGetter<C>,
  attributes: Attributes,
): { context: Context; end: (status: { code: number; name: string; message?: string }) => void } | undefined {
  if (!enabled) return undefined;
  const parent = propagation.extract(context.active(), carrier, getter);
  const span = tracer().startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
  let ended = false;
  return {
    context: trace.setSpan(parent, span),
    end: ({ code, name: status, message }) => {
      if (ended) return;
      ended = true;
      span.setAttributes({ 'rpc.grpc.status_code': code, 'tierflight.status': status });
      // A client's cancel is not the server's error.
      if (status !== 'OK' && status !== 'CANCELLED') span.setStatus({ code: SpanStatusCode.ERROR, message });
      span.end();
    },
  };
}

/** Runs `fn` in `ctx` (a server span's context). */
export function runIn<T>(ctx: Context, fn: () => T): T {
  return context.with(ctx, fn);
}
