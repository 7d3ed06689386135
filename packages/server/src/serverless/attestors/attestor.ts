/**
 * The attestor plug-in contract (a factory per type that validates its policy config and builds an attestor)
 * and the config-reading helpers the three attestors share.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import type { TrustDomain } from '@tessera/spiffe/spiffeid';
import type { JwksLocation, JwksRegistry } from '../jwks.js';
import type { Attestor, ServerlessClock } from '../types.js';

/** One problem found in a policy file. */
export interface PolicyIssue {
  /** Dotted path of the offending key (`spec.policies[0].requiredAttestors[0].config.audience`). */
  readonly path: string;
  readonly message: string;
}

/** What an attestor factory gets to build an attestor. */
export interface AttestorContext {
  readonly trustDomain: TrustDomain;
  readonly jwks: JwksRegistry;
  readonly clock: ServerlessClock;
  /** Path of the attestor's `config` in the policy file, for issues. */
  readonly path: string;
  readonly issues: PolicyIssue[];
}

/** Builds attestors of one type. */
export interface AttestorFactory {
  readonly type: string;
  /** Whether templates may use `{{<type>.<name>}}`. */
  hasAttribute(name: string): boolean;
  /** Validates `config` (reporting every problem into `ctx.issues`) and builds the attestor when it is valid. */
  create(config: unknown, ctx: AttestorContext): Attestor | undefined;
}

/** A config object with typed readers that report problems instead of throwing. */
export class ConfigReader {
  readonly #obj: Record<string, unknown>;
  readonly #ctx: AttestorContext;
  readonly #path: string;
  readonly #known = new Set<string>();
  readonly startIssues: number;

  constructor(raw: unknown, ctx: AttestorContext, path = ctx.path) {
    this.#ctx = ctx;
    this.#path = path;
    this.startIssues = ctx.issues.length;
    if (raw === undefined || raw === null) {
      this.#obj = {};
    } else if (typeof raw === 'object' && !Array.isArray(raw)) {
      this.#obj = raw as Record<string, unknown>;
    } else {
      this.#obj = {};
      this.error('', 'must be a mapping');
    }
  }

  error(key: string, message: string): void {
    this.#ctx.issues.push({ path: key === '' ? this.#path : `${this.#path}.${key}`, message });
  }

  get failed(): boolean {
    return this.#ctx.issues.length > this.startIssues;
  }

  #get(key: string): unknown {
    this.#known.add(key);
    return this.#obj[key];
  }

  string(key: string, opts: { url?: boolean } = {}): string | undefined {
    const v = this.#get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '') {
      this.error(key, `must be a non-empty string, got ${JSON.stringify(v)}`);
      return undefined;
    }
    if (opts.url === true) {
      let u: URL;
      try {
        u = new URL(v);
      } catch {
        this.error(key, `must be a URL, got ${JSON.stringify(v)}`);
        return undefined;
      }
      if (u.protocol !== 'https:') {
        this.error(key, `must be an https URL, got ${JSON.stringify(v)}`);
        return undefined;
      }
    }
    return v;
  }

  boolean(key: string): boolean | undefined {
    const v = this.#get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') {
      this.error(key, `must be true or false, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  }

  strings(key: string): string[] | undefined {
    const v = this.#get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length === 0 || !v.every((s) => typeof s === 'string' && s !== '')) {
      this.error(key, `must be a non-empty list of non-empty strings, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v as string[];
  }

  /** Raw list of mappings (each read with a nested reader). */
  list(key: string): unknown[] | undefined {
    const v = this.#get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length === 0) {
      this.error(key, 'must be a non-empty list');
      return undefined;
    }
    return v;
  }

  /** Reports keys no reader asked for. */
  finish(): void {
    for (const k of Object.keys(this.#obj)) {
      if (!this.#known.has(k)) this.error(k, 'unknown key');
    }
  }
}

/** The key-source settings every attestor takes: issuer, jwksUri, caFile, jwksFile, audience. */
export interface KeySourceSettings {
  readonly issuer: string | undefined;
  readonly jwksUri: string | undefined;
  readonly jwksFile: string | undefined;
  readonly caPem: string | undefined;
  readonly audience: string | undefined;
}

/** Reads issuer / jwksUri / caFile / jwksFile / audience, loading the CA file. */
export function readKeySource(r: ConfigReader): KeySourceSettings {
  const issuer = r.string('issuer', { url: true });
  const jwksUri = r.string('jwksUri', { url: true });
  const jwksFile = r.string('jwksFile');
  const caFile = r.string('caFile');
  const audience = r.string('audience');
  if (jwksUri !== undefined && jwksFile !== undefined)
    r.error('jwksFile', 'set either jwksUri or jwksFile, not both');
  if (caFile !== undefined && jwksFile !== undefined) r.error('caFile', 'is not used with jwksFile');
  let caPem: string | undefined;
  if (caFile !== undefined) {
    try {
      caPem = readFileSync(caFile, 'utf8');
      if (!caPem.includes('-----BEGIN CERTIFICATE-----')) {
        r.error('caFile', `${JSON.stringify(caFile)} contains no PEM certificate`);
      }
    } catch (err) {
      r.error(
        'caFile',
        `cannot read ${JSON.stringify(caFile)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  }
  if (jwksFile !== undefined) {
    try {
      const doc: unknown = JSON.parse(readFileSync(jwksFile, 'utf8'));
      if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
        r.error('jwksFile', `${JSON.stringify(jwksFile)} is not a JWKS (no "keys" array)`);
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      r.error('jwksFile', `cannot read ${JSON.stringify(jwksFile)}: ${code ?? 'not JSON'}`);
    }
  }
  return { issuer, jwksUri, jwksFile, caPem, audience };
}

/** The JWKS location of an issuer from the settings. */
export function locationOf(issuer: string, s: KeySourceSettings): JwksLocation {
  return {
    issuer,
    ...(s.jwksUri === undefined ? {} : { jwksUri: s.jwksUri }),
    ...(s.jwksFile === undefined ? {} : { jwksFile: s.jwksFile }),
    ...(s.caPem === undefined ? {} : { caPem: s.caPem }),
  };
}

/** Reads a nested claim object. */
export function claimObject(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

/** A claim as an attribute string (strings as is, integers in decimal), or undefined. */
export function claimString(v: unknown): string | undefined {
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  return undefined;
}
