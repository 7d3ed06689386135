/**
 * Serverless attestation policies: the `ServerlessAttestation` v1 document, validated with every problem
 * reported (attestor configs per type, template attributes per attestor type), compiled into attestors, and the
 * path templates (`/gcp/{{gcp_iit.project_id}}/{{gcp_iit.service_account.id}}`) rendered into SPIFFE IDs.
 *
 * @module
 */
import { ConfigError } from '@tessera/spiffe/errors';
import { SpiffeId, type TrustDomain, validatePath } from '@tessera/spiffe/spiffeid';
import { parse as parseYaml } from 'yaml';
import type { AttestorFactory, PolicyIssue } from './attestors/attestor.js';
import { awsTokenAttestor } from './attestors/aws-token.js';
import { azureMsiAttestor } from './attestors/azure-msi.js';
import { gcpIitAttestor } from './attestors/gcp-iit.js';
import type { JwksRegistry } from './jwks.js';
import { type AttestedAttributes, type Attestor, type ServerlessClock, ServerlessDenial } from './types.js';

/** The built-in attestor factories, by type. */
export const ATTESTOR_FACTORIES: ReadonlyMap<string, AttestorFactory> = new Map(
  [gcpIitAttestor, awsTokenAttestor, azureMsiAttestor].map((f) => [f.type, f]),
);

type Part = { readonly literal: string } | { readonly type: string; readonly attribute: string };

/** A parsed path template. */
export class PathTemplate {
  readonly source: string;
  readonly #parts: readonly Part[];

  private constructor(source: string, parts: Part[]) {
    this.source = source;
    this.#parts = parts;
  }

  /**
   * Parses a template; problems are returned, not thrown.
   *
   * @param hasAttribute - whether `type.attribute` is known (unknown ones are problems)
   */
  static parse(
    source: string,
    hasAttribute: (type: string, attribute: string) => string | undefined,
  ): { template?: PathTemplate; problems: string[] } {
    const problems: string[] = [];
    const parts: Part[] = [];
    const re = /\{\{\s*([a-z0-9_]+)\.([A-Za-z0-9_.:/=+@-]+?)\s*\}\}/g;
    let last = 0;
    for (let m = re.exec(source); m !== null; m = re.exec(source)) {
      parts.push({ literal: source.slice(last, m.index) });
      const type = m[1] ?? '';
      const attribute = m[2] ?? '';
      const p = hasAttribute(type, attribute);
      if (p !== undefined) problems.push(p);
      parts.push({ type, attribute });
      last = re.lastIndex;
    }
    parts.push({ literal: source.slice(last) });
    for (const p of parts) {
      if ('literal' in p && (p.literal.includes('{{') || p.literal.includes('}}'))) {
        problems.push(
          `has a malformed placeholder in ${JSON.stringify(p.literal)}; use {{<type>.<attribute>}}`,
        );
      }
    }
    if (!source.startsWith('/')) problems.push(`must start with "/", got ${JSON.stringify(source)}`);
    if (problems.length === 0) {
      // Render with a placeholder value so literal parts are checked now (e.g. "//" or "/../").
      const sample = parts.map((p) => ('literal' in p ? p.literal : 'x')).join('');
      try {
        validatePath(sample);
      } catch (err) {
        problems.push(`does not render a valid SPIFFE ID path: ${(err as Error).message}`);
      }
    }
    return problems.length === 0 ? { template: new PathTemplate(source, parts), problems } : { problems };
  }

  /** The `type.attribute` placeholders. */
  placeholders(): { type: string; attribute: string }[] {
    return this.#parts.flatMap((p) => ('literal' in p ? [] : [{ type: p.type, attribute: p.attribute }]));
  }

  /**
   * Renders the SPIFFE ID path.
   *
   * @throws {ServerlessDenial} policy_denied when an attribute is missing, contains "/", or the result is not a
   *   valid SPIFFE ID path
   */
  render(attributes: ReadonlyMap<string, AttestedAttributes>, policy: string): string {
    let out = '';
    for (const p of this.#parts) {
      if ('literal' in p) {
        out += p.literal;
        continue;
      }
      const v = attributes.get(p.type)?.get(p.attribute);
      if (v === undefined) {
        throw new ServerlessDenial(
          'policy_denied',
          `policy ${JSON.stringify(policy)}: attribute ${p.type}.${p.attribute} is not present in the token`,
          policy,
        );
      }
      if (v.includes('/')) {
        throw new ServerlessDenial(
          'policy_denied',
          `policy ${JSON.stringify(policy)}: attribute ${p.type}.${p.attribute} value ${JSON.stringify(v)} contains "/"`,
          policy,
        );
      }
      out += v;
    }
    try {
      validatePath(out);
    } catch (err) {
      throw new ServerlessDenial(
        'policy_denied',
        `policy ${JSON.stringify(policy)}: rendered path ${JSON.stringify(out)} is not a valid SPIFFE ID path: ${(err as Error).message}`,
        policy,
      );
    }
    return out;
  }
}

/** A compiled policy. */
export interface ServerlessPolicy {
  readonly name: string;
  readonly template: PathTemplate;
  /** One attestor per required type, in the file's order. */
  readonly attestors: readonly Attestor[];
  /** Renders the SPIFFE ID for the attested attributes. */
  spiffeId(attributes: ReadonlyMap<string, AttestedAttributes>): SpiffeId;
}

/** What compiling policies needs. */
export interface PolicyCompileContext {
  readonly trustDomain: TrustDomain;
  readonly jwks: JwksRegistry;
  readonly clock: ServerlessClock;
  /** Attestor factories (default {@link ATTESTOR_FACTORIES}). */
  readonly factories?: ReadonlyMap<string, AttestorFactory>;
}

/** The result of {@link compilePolicies}: the policies, or every problem. */
export type PolicyCompileResult =
  | { readonly policies: readonly ServerlessPolicy[]; readonly issues?: undefined }
  | { readonly policies?: undefined; readonly issues: readonly PolicyIssue[] };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownKeys(
  obj: Record<string, unknown>,
  known: readonly string[],
  path: string,
  issues: PolicyIssue[],
): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) issues.push({ path: path === '' ? k : `${path}.${k}`, message: 'unknown key' });
  }
}

/**
 * Validates and compiles a parsed policy document, collecting every problem.
 *
 * @example
 * ```ts
 * const r = compilePolicies(parseYaml(text), { trustDomain, jwks, clock });
 * if (r.issues) for (const i of r.issues) console.error(`${i.path}: ${i.message}`);
 * ```
 */
export function compilePolicies(doc: unknown, ctx: PolicyCompileContext): PolicyCompileResult {
  const factories = ctx.factories ?? ATTESTOR_FACTORIES;
  const issues: PolicyIssue[] = [];
  const policies: ServerlessPolicy[] = [];
  if (!isRecord(doc))
    return { issues: [{ path: '', message: 'must be a mapping with section, schema and spec' }] };
  unknownKeys(doc, ['section', 'schema', 'spec'], '', issues);
  if (doc.section !== 'ServerlessAttestation') {
    issues.push({
      path: 'section',
      message: `must be "ServerlessAttestation", got ${JSON.stringify(doc.section)}`,
    });
  }
  if (doc.schema !== 'v1')
    issues.push({ path: 'schema', message: `must be "v1", got ${JSON.stringify(doc.schema)}` });
  const spec = doc.spec;
  if (!isRecord(spec)) {
    issues.push({ path: 'spec', message: 'must be a mapping with policies' });
    return { issues };
  }
  unknownKeys(spec, ['policies'], 'spec', issues);
  if (!Array.isArray(spec.policies)) {
    issues.push({ path: 'spec.policies', message: 'must be a list' });
    return { issues };
  }
  const names = new Set<string>();
  spec.policies.forEach((raw: unknown, i) => {
    const path = `spec.policies[${i}]`;
    if (!isRecord(raw)) {
      issues.push({ path, message: 'must be a mapping' });
      return;
    }
    unknownKeys(raw, ['name', 'svidPolicy', 'requiredAttestors'], path, issues);
    const name = raw.name;
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,128}$/.test(name)) {
      issues.push({
        path: `${path}.name`,
        message: `must be 1-128 letters, digits, ".", "_" or "-", got ${JSON.stringify(name)}`,
      });
    } else if (names.has(name)) {
      issues.push({ path: `${path}.name`, message: `${JSON.stringify(name)} is used by another policy` });
    } else {
      names.add(name);
    }
    const attestors: Attestor[] = [];
    const types = new Set<string>();
    const ra = raw.requiredAttestors;
    if (!Array.isArray(ra) || ra.length === 0) {
      issues.push({ path: `${path}.requiredAttestors`, message: 'must be a non-empty list' });
    } else {
      ra.forEach((a: unknown, j) => {
        const apath = `${path}.requiredAttestors[${j}]`;
        if (!isRecord(a)) {
          issues.push({ path: apath, message: 'must be a mapping with type and config' });
          return;
        }
        unknownKeys(a, ['type', 'config'], apath, issues);
        const factory = typeof a.type === 'string' ? factories.get(a.type) : undefined;
        if (factory === undefined) {
          issues.push({
            path: `${apath}.type`,
            message: `unknown attestor type ${JSON.stringify(a.type)}; known: ${[...factories.keys()].join(', ')}`,
          });
          return;
        }
        if (types.has(factory.type)) {
          issues.push({ path: `${apath}.type`, message: `${factory.type} is required twice in this policy` });
          return;
        }
        types.add(factory.type);
        const att = factory.create(a.config, { ...ctx, path: `${apath}.config`, issues });
        if (att !== undefined) attestors.push(att);
      });
    }
    const sp = raw.svidPolicy;
    let template: PathTemplate | undefined;
    if (!isRecord(sp)) {
      issues.push({ path: `${path}.svidPolicy`, message: 'must be a mapping with pathTemplate' });
    } else {
      unknownKeys(sp, ['pathTemplate'], `${path}.svidPolicy`, issues);
      if (typeof sp.pathTemplate !== 'string') {
        issues.push({ path: `${path}.svidPolicy.pathTemplate`, message: 'is required (a string)' });
      } else {
        const r = PathTemplate.parse(sp.pathTemplate, (type, attr) => {
          const f = factories.get(type);
          if (f === undefined)
            return `uses {{${type}.${attr}}} but ${JSON.stringify(type)} is not an attestor type`;
          if (!f.hasAttribute(attr))
            return `uses {{${type}.${attr}}} but ${type} has no attribute ${JSON.stringify(attr)}`;
          if (Array.isArray(ra) && !ra.some((a: unknown) => isRecord(a) && a.type === type)) {
            return `uses {{${type}.${attr}}} but ${type} is not a required attestor of this policy`;
          }
          return undefined;
        });
        for (const message of r.problems) issues.push({ path: `${path}.svidPolicy.pathTemplate`, message });
        template = r.template;
      }
    }
    if (typeof name === 'string' && template !== undefined && attestors.length > 0) {
      const tpl = template;
      policies.push({
        name,
        template: tpl,
        attestors,
        spiffeId: (attrs) => SpiffeId.fromPath(ctx.trustDomain, tpl.render(attrs, name)),
      });
    }
  });
  return issues.length > 0 ? { issues } : { policies };
}

/**
 * Parses and compiles a policy file's text (YAML or JSON).
 *
 * @throws {ConfigError} ERR_CONFIG_INVALID listing every problem, one per line
 */
export function parsePolicies(
  text: string,
  ctx: PolicyCompileContext,
  source = 'policy file',
): readonly ServerlessPolicy[] {
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `serverless: ${source} is not valid YAML: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  const r = compilePolicies(doc, ctx);
  if (r.issues !== undefined) {
    const err = new ConfigError(
      'ERR_CONFIG_INVALID',
      `serverless: ${source} is invalid:\n${r.issues.map((i) => `  ${i.path === '' ? '(document)' : i.path}: ${i.message}`).join('\n')}`,
    );
    Object.defineProperty(err, 'issues', { value: r.issues });
    throw err;
  }
  return r.policies;
}
