import { z } from 'zod';
import { configSchema, tokenSecretSchema } from './schema.js';

/**
 * The JSON Schema of a Tierflight config file, generated from the same zod schema the
 * server validates with, so editors complete and check exactly what `serve` accepts.
 * `config/tierflight.schema.json` is this, committed; a test keeps the two in step.
 */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, {
    io: 'input',
    unrepresentable: 'any',
    override: (ctx) => {
      // Files name the secret as ${ENV_VAR}; the server reads the variable before validating.
      if (ctx.zodSchema === tokenSecretSchema) {
        for (const key of Object.keys(ctx.jsonSchema)) delete ctx.jsonSchema[key];
        Object.assign(ctx.jsonSchema, {
          type: 'string',
          description: 'At least 32 characters, or ${ENV_VAR} to read it from the environment',
          anyOf: [{ minLength: 32 }, { pattern: '^\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}$' }],
        });
      }
    },
  }) as Record<string, unknown>;
  return {
    ...schema,
    $id: 'https://tierflight.dev/config.schema.json',
    title: 'Tierflight configuration',
    description:
      'Storage types, durable stores, storage classes, limit policies and server settings (DESIGN.md section 5). ' +
      'Sizes are bytes or strings such as 512MiB; durations are milliseconds or strings such as 15m.',
  };
}
