import { z } from 'zod';
import { configSchema } from './schema.js';

/**
 * The JSON Schema of a Tierflight config file, generated from the same zod schema the
 * server validates with, so editors complete and check exactly what `serve` accepts.
 * `config/tierflight.schema.json` is this, committed; a test keeps the two in step.
 */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    ...schema,
    $id: 'https://tierflight.dev/config.schema.json',
    title: 'Tierflight configuration',
    description:
      'Storage types, durable stores, storage classes, limit policies and server settings (DESIGN.md section 5). ' +
      'Sizes are bytes or strings such as 512MiB; durations are milliseconds or strings such as 15m.',
  };
}
