/** Markdown reference documentation generated from a configuration schema. @module */
import type { AnySchema, SchemaField } from './schema.js';

/** One documented key. */
export interface ConfigDocRow {
  /** Dotted key path as written in the file (`health_checks.bind_port`; `<name>` for operator-chosen keys). */
  readonly key: string;
  /** Human-readable type. */
  readonly type: string;
  /** Default text, `(required)` or `(none)`. */
  readonly default: string;
  /** Description from the schema. */
  readonly description: string;
}

/**
 * Lists every key of a schema, depth first, with type, default and description.
 *
 * @example
 * ```ts
 * for (const row of describeConfigSchema(serverConfigSchema)) console.log(row.key, row.type);
 * ```
 */
export function describeConfigSchema(schema: AnySchema, prefix = ''): ConfigDocRow[] {
  const rows: ConfigDocRow[] = [];
  const ch = schema.info.children;
  if (ch === undefined) return rows;
  const visit = (f: SchemaField, key: string, option: boolean): void => {
    const info = f.schema.info;
    rows.push({
      key,
      type: info.children?.kind === 'object' ? 'section' : info.type,
      default: option
        ? '(one of the options)'
        : info.required
          ? '(required)'
          : (info.defaultText ?? '(none)'),
      description: info.description ?? '',
    });
    rows.push(...describeConfigSchema(f.schema, key));
  };
  const join = (k: string): string => (prefix === '' ? k : `${prefix}.${k}`);
  switch (ch.kind) {
    case 'object':
    case 'variant':
      for (const f of ch.kind === 'object' ? ch.fields : ch.options)
        visit(f, join(f.key), ch.kind === 'variant');
      break;
    case 'list':
      rows.push(...describeConfigSchema(ch.item, `${prefix}[]`));
      break;
    case 'map':
      rows.push(...describeConfigSchema(ch.value, `${prefix}.<${ch.keyType.replaceAll(' ', '_')}>`));
      break;
  }
  return rows;
}

function cell(s: string): string {
  return s.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

/**
 * Renders {@link describeConfigSchema} as a Markdown table under a title and an introduction.
 *
 * @example
 * ```ts
 * writeFileSync('docs/config/server.md', renderConfigDocs(serverConfigSchema, { title: 'Server configuration' }));
 * ```
 */
export function renderConfigDocs(schema: AnySchema, opts: { title: string; intro?: string }): string {
  const rows = describeConfigSchema(schema);
  const lines = [`# ${opts.title}`, ''];
  if (opts.intro !== undefined) lines.push(opts.intro.trim(), '');
  lines.push('| Key | Type | Default | Description |', '|---|---|---|---|');
  for (const r of rows) {
    lines.push(`| \`${cell(r.key)}\` | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.description)} |`);
  }
  return `${lines.join('\n')}\n`;
}
