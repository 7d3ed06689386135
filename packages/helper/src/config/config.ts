/**
 * tessera-helper configuration: loading (YAML, JSON or spiffe-helper's HCL), validation that reports every
 * problem with its key, and the typed {@link HelperConfig} the helper runs on.
 *
 * @module
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { extname, isAbsolute, resolve } from 'node:path';
import { ConfigError } from '@tessera/spiffe/errors';
import { SpiffeId } from '@tessera/spiffe/spiffeid';
import { parseEndpointAddress } from '@tessera/spiffe/workloadapi';
import { parse as parseYaml } from 'yaml';
import { parseHcl } from './hcl.js';

/** Default Workload API address when neither `agent_address` nor `SPIFFE_ENDPOINT_SOCKET` is set. */
export const DEFAULT_AGENT_ADDRESS = 'unix:///tmp/tessera-agent/public/api.sock';

/** Formats a configuration file can be written in. */
export type ConfigFormat = 'yaml' | 'json' | 'hcl';

/** One problem found in a configuration. */
export interface ConfigIssue {
  /** Dotted path of the offending key (`jwt_svids[1].jwt_audience`). */
  readonly path: string;
  /** What is wrong, lowercase. */
  readonly message: string;
}

/** A JWT-SVID the helper keeps on disk. */
export interface JwtSvidOutput {
  /** First audience of the token. */
  readonly audience: string;
  /** Further audiences. */
  readonly extraAudiences: readonly string[];
  /** Absolute path of the token file. */
  readonly file: string;
}

/** The X.509 files the helper keeps on disk (absolute paths). */
export interface X509Outputs {
  /** Certificate chain (leaf first; leaf only with `add_intermediates_to_bundle`). */
  readonly svidFile: string;
  /** PKCS#8 private key. */
  readonly keyFile: string;
  /** Trust bundle (CA certificates). */
  readonly bundleFile: string;
}

/** Health endpoint settings (`health_checks`). */
export interface HealthChecksConfig {
  /** Serve the endpoints. */
  readonly listenerEnabled: boolean;
  /** TCP port (0 picks a free one). */
  readonly bindPort: number;
  /** Address to bind; default all interfaces, as spiffe-helper. */
  readonly bindAddress: string;
  /** Path of the liveness endpoint. */
  readonly livenessPath: string;
  /** Path of the readiness endpoint. */
  readonly readinessPath: string;
}

/** Where the helper reads a platform identity token, fresh for every request (`remote_attestation.attestations[]`). */
export type TokenLocation =
  /** A file, re-read before every request (e.g. a projected service account token). */
  | { readonly kind: 'file'; readonly path: string }
  /** An environment variable of the helper's process. */
  | { readonly kind: 'env'; readonly name: string }
  /** A shell command (`/bin/sh -c`) whose standard output is the token, run before every request. */
  | { readonly kind: 'command'; readonly command: string };

/** One attestation the helper presents: the attestor type and where its token comes from. */
export interface RemoteAttestationInput {
  /** Attestor type, e.g. `gcp_iit`, `aws_token`, `azure_msi`. */
  readonly type: string;
  /** Where the token is read. */
  readonly token: TokenLocation;
}

/** Remote-attestation mode (`remote_attestation`): SVIDs from a Tessera server's serverless API. */
export interface RemoteAttestationConfig {
  /** Base https URL of the serverless API (`https://spiffe.example.org:8444`). */
  readonly serverAddress: string;
  /** Path of the PEM CA file that authenticates the server; undefined means the system store. */
  readonly caFile: string | undefined;
  /** Its PEM content, read when the configuration was validated. */
  readonly caPem: string | undefined;
  /** SPIFFE ID the server's certificate must carry (its own SVID); undefined checks the host name instead. */
  readonly serverSpiffeId: string | undefined;
  /** The attestations presented with every request (at least one). */
  readonly attestations: readonly RemoteAttestationInput[];
}

/** The validated configuration of tessera-helper. */
export interface HelperConfig {
  /** Workload API endpoint URI (`unix:///…` or `tcp://ip:port`); undefined in remote-attestation mode. */
  readonly agentAddress: string | undefined;
  /** Remote-attestation mode settings; undefined when the helper uses the Workload API. */
  readonly remoteAttestation: RemoteAttestationConfig | undefined;
  /** Program to start and manage (daemon mode); undefined when none. */
  readonly cmd: string | undefined;
  /** Its arguments. */
  readonly cmdArgs: readonly string[];
  /** File holding the PID of a process to signal after updates. */
  readonly pidFileName: string | undefined;
  /** Signal sent after updates; undefined means "restart `cmd`". */
  readonly renewSignal: NodeJS.Signals | undefined;
  /** Directory the relative file names are resolved in. */
  readonly certDir: string;
  /** X.509 outputs, when configured. */
  readonly x509: X509Outputs | undefined;
  /** JWT-SVID outputs. */
  readonly jwtSvids: readonly JwtSvidOutput[];
  /** JWT bundle output file, when configured. */
  readonly jwtBundleFile: string | undefined;
  /** Append the federated trust domains' CAs to the bundle file. */
  readonly includeFederatedDomains: boolean;
  /** Write intermediates into the bundle file instead of the SVID file. */
  readonly addIntermediatesToBundle: boolean;
  /** Mode of certificate and bundle files. */
  readonly certFileMode: number;
  /** Mode of the private key file. */
  readonly keyFileMode: number;
  /** Mode of the JWT bundle file. */
  readonly jwtBundleFileMode: number;
  /** Mode of JWT-SVID files. */
  readonly jwtSvidFileMode: number;
  /** Hint choosing the SVID among several ('' = the first). */
  readonly hint: string;
  /** Keep running and follow rotations (true) or write once and exit (false). */
  readonly daemonMode: boolean;
  /** Also signal the process after a JWT-SVID refresh (Tessera addition). */
  readonly renewOnJwtSvidUpdate: boolean;
  /** Health endpoints. */
  readonly healthChecks: HealthChecksConfig;
}

/** Options of {@link validateHelperConfig}. */
export interface ValidateOptions {
  /** The file format the raw object came from; HCL allows numeric file modes (`0644` is octal there). */
  readonly format?: ConfigFormat;
  /** Environment to read `SPIFFE_ENDPOINT_SOCKET` from; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Directory relative `cert_dir` values resolve against; default the current directory. */
  readonly cwd?: string;
}

/** A configuration that failed validation: `issues` lists every problem. */
export class HelperConfigError extends ConfigError {
  /** Every problem found, in key order. */
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    super('ERR_CONFIG_INVALID', `helper config: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.issues = issues;
  }
}

const TOP_KEYS = new Set([
  'agent_address',
  'cmd',
  'cmd_args',
  'pid_file_name',
  'renew_signal',
  'cert_dir',
  'svid_file_name',
  'svid_key_file_name',
  'svid_bundle_file_name',
  'jwt_svids',
  'jwt_bundle_file_name',
  'include_federated_domains',
  'add_intermediates_to_bundle',
  'cert_file_mode',
  'key_file_mode',
  'jwt_bundle_file_mode',
  'jwt_svid_file_mode',
  'hint',
  'daemon_mode',
  'health_checks',
  'renew_on_jwt_svid_update',
  'remote_attestation',
]);
const REMOTE_KEYS = new Set(['server_address', 'ca_file', 'server_spiffe_id', 'attestations']);
const ATTESTATION_KEYS = new Set(['type', 'token_file', 'token_env', 'token_command']);
/** The serverless API accepts at most this many attestations per request. */
const MAX_ATTESTATIONS = 8;
const JWT_KEYS = new Set(['jwt_audience', 'jwt_svid_file_name', 'jwt_extra_audiences']);
const HEALTH_KEYS = new Set([
  'listener_enabled',
  'bind_port',
  'bind_address',
  'liveness_path',
  'readiness_path',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  return typeof v;
}

class Checker {
  readonly issues: ConfigIssue[] = [];
  readonly #format: ConfigFormat | undefined;

  constructor(format: ConfigFormat | undefined) {
    this.#format = format;
  }

  add(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  unknownKeys(obj: Record<string, unknown>, known: Set<string>, prefix: string): void {
    for (const key of Object.keys(obj)) {
      if (!known.has(key)) this.add(`${prefix}${key}`, 'unknown key');
    }
  }

  string(obj: Record<string, unknown>, key: string, path: string): string | undefined {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') {
      this.add(path, `must be a string, got ${kind(v)}`);
      return undefined;
    }
    if (v.includes('\0')) {
      this.add(path, 'must not contain NUL characters');
      return undefined;
    }
    return v;
  }

  bool(obj: Record<string, unknown>, key: string, path: string, def: boolean): boolean {
    const v = obj[key];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') {
      this.add(path, `must be true or false, got ${kind(v)} ${JSON.stringify(v)}`);
      return def;
    }
    return v;
  }

  /** File modes: a string of octal digits everywhere; a number too in HCL (where `0644` is octal). */
  mode(obj: Record<string, unknown>, key: string, path: string, def: number): number {
    const v = obj[key];
    if (v === undefined || v === null) return def;
    let mode: number | undefined;
    if (typeof v === 'string' && /^0?[0-7]{1,3}$|^0o[0-7]{1,3}$/.test(v)) {
      mode = Number.parseInt(v.replace(/^0o/, ''), 8);
    } else if (typeof v === 'number' && this.#format === 'hcl' && Number.isInteger(v)) {
      mode = v;
    } else {
      const hint =
        typeof v === 'number' ? ' (YAML and JSON read 0644 as a decimal number: quote it, e.g. "0644")' : '';
      this.add(path, `must be an octal file mode such as "0644", got ${JSON.stringify(v)}${hint}`);
      return def;
    }
    if (mode <= 0 || mode > 0o777) {
      this.add(path, `must be a file mode between 0001 and 0777, got ${JSON.stringify(v)}`);
      return def;
    }
    return mode;
  }
}

/** Splits spiffe-helper's `cmd_args` string at spaces, honouring double quotes (`""` inside quotes is a quote). */
export function splitCommandLine(args: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inField = false;
  let quoted = false;
  for (let i = 0; i < args.length; i++) {
    const c = args[i]!;
    if (quoted) {
      if (c === '"') {
        if (args[i + 1] === '"') {
          cur += '"';
          i++;
        } else quoted = false;
      } else cur += c;
      continue;
    }
    if (c === '"' && cur === '') {
      quoted = true;
      inField = true;
    } else if (c === ' ') {
      if (inField) out.push(cur);
      cur = '';
      inField = false;
    } else {
      cur += c;
      inField = true;
    }
  }
  if (quoted) throw new TypeError('unterminated quote');
  if (inField) out.push(cur);
  return out;
}

function parseSignal(name: string): NodeJS.Signals | undefined {
  const upper = name.trim().toUpperCase();
  const full = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  return Object.hasOwn(osConstants.signals, full) ? (full as NodeJS.Signals) : undefined;
}

function normalizeAddress(c: Checker, raw: string, path: string): string | undefined {
  // spiffe-helper takes a socket path; Tessera also takes endpoint URIs.
  const uri = /^[A-Za-z][A-Za-z0-9+.-]*:/.test(raw) ? raw : isAbsolute(raw) ? `unix://${raw}` : undefined;
  if (uri === undefined) {
    c.add(path, `must be an absolute socket path or a unix:// or tcp:// URI, got ${JSON.stringify(raw)}`);
    return undefined;
  }
  try {
    parseEndpointAddress(uri);
  } catch (err) {
    c.add(path, `invalid Workload API address: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
  return uri;
}

function serverAddress(c: Checker, raw: string, path: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    c.add(path, `must be an https URL, got ${JSON.stringify(raw)}`);
    return undefined;
  }
  if (url.protocol !== 'https:') {
    c.add(path, `must be an https URL, got ${JSON.stringify(raw)}`);
    return undefined;
  }
  if (url.username !== '' || url.password !== '') {
    c.add(path, 'must not contain credentials');
    return undefined;
  }
  // The API paths are absolute (/v1/remote/…): a base path or query would be silently dropped.
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    c.add(
      path,
      `must be a bare origin such as "https://spiffe.example.org:8444", got ${JSON.stringify(raw)}`,
    );
    return undefined;
  }
  return url.origin;
}

function readCaFile(c: Checker, file: string, path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    c.add(path, `cannot read ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    c.add(path, `${JSON.stringify(file)} holds no PEM certificate`);
    return undefined;
  }
  for (const [i, b] of blocks.entries()) {
    try {
      new X509Certificate(b);
    } catch {
      c.add(path, `certificate ${i + 1} of ${JSON.stringify(file)} cannot be parsed`);
      return undefined;
    }
  }
  return blocks.map((b) => `${b}\n`).join('');
}

function remoteConfig(c: Checker, raw: unknown, cwd: string): RemoteAttestationConfig | undefined {
  const p = 'remote_attestation';
  if (!isObject(raw)) {
    c.add(p, `must be an object, got ${kind(raw)}`);
    return undefined;
  }
  const before = c.issues.length;
  c.unknownKeys(raw, REMOTE_KEYS, `${p}.`);
  const addrRaw = c.string(raw, 'server_address', `${p}.server_address`);
  let address: string | undefined;
  if (addrRaw === undefined || addrRaw === '') c.add(`${p}.server_address`, 'is required');
  else address = serverAddress(c, addrRaw, `${p}.server_address`);

  const caRaw = c.string(raw, 'ca_file', `${p}.ca_file`) || undefined;
  const caFile = caRaw === undefined ? undefined : resolve(cwd, caRaw);
  const caPem = caFile === undefined ? undefined : readCaFile(c, caFile, `${p}.ca_file`);

  const idRaw = c.string(raw, 'server_spiffe_id', `${p}.server_spiffe_id`) || undefined;
  let serverSpiffeId: string | undefined;
  if (idRaw !== undefined) {
    try {
      serverSpiffeId = SpiffeId.fromString(idRaw).toString();
    } catch (err) {
      c.add(
        `${p}.server_spiffe_id`,
        `invalid SPIFFE ID: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    // A SPIFFE ID is only meaningful against the trust bundle: the system store does not issue SVIDs.
    if (caRaw === undefined) c.add(`${p}.server_spiffe_id`, 'needs ca_file (the trust bundle)');
  }

  const attestations: RemoteAttestationInput[] = [];
  const listRaw = raw.attestations;
  const list = Array.isArray(listRaw) ? listRaw : isObject(listRaw) ? [listRaw] : undefined;
  if (listRaw === undefined || listRaw === null) c.add(`${p}.attestations`, 'is required');
  else if (list === undefined) c.add(`${p}.attestations`, `must be a list of objects, got ${kind(listRaw)}`);
  else if (list.length === 0) c.add(`${p}.attestations`, 'must not be empty');
  else if (list.length > MAX_ATTESTATIONS) {
    c.add(`${p}.attestations`, `must hold at most ${MAX_ATTESTATIONS} attestations, got ${list.length}`);
  }
  const types = new Set<string>();
  list?.forEach((entry, i) => {
    const ap = `${p}.attestations[${i}]`;
    if (!isObject(entry)) {
      c.add(ap, `must be an object, got ${kind(entry)}`);
      return;
    }
    c.unknownKeys(entry, ATTESTATION_KEYS, `${ap}.`);
    const type = c.string(entry, 'type', `${ap}.type`);
    if (type === undefined || type === '') c.add(`${ap}.type`, 'is required');
    else if (types.has(type)) c.add(`${ap}.type`, `${JSON.stringify(type)} is given twice`);
    else types.add(type);
    const file = c.string(entry, 'token_file', `${ap}.token_file`);
    const envName = c.string(entry, 'token_env', `${ap}.token_env`);
    const command = c.string(entry, 'token_command', `${ap}.token_command`);
    const given = [
      ['token_file', file],
      ['token_env', envName],
      ['token_command', command],
    ].filter(([, v]) => v !== undefined);
    if (given.length !== 1) {
      c.add(
        ap,
        given.length === 0
          ? 'needs one of token_file, token_env or token_command'
          : `takes only one of token_file, token_env or token_command, got ${given.map(([k]) => k).join(' and ')}`,
      );
      return;
    }
    let token: TokenLocation | undefined;
    if (file !== undefined) {
      if (file === '') c.add(`${ap}.token_file`, 'must not be empty');
      else token = { kind: 'file', path: resolve(cwd, file) };
    } else if (envName !== undefined) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(envName)) {
        c.add(`${ap}.token_env`, `must be an environment variable name, got ${JSON.stringify(envName)}`);
      } else token = { kind: 'env', name: envName };
    } else if (command !== undefined) {
      if (command.trim() === '') c.add(`${ap}.token_command`, 'must not be empty');
      else token = { kind: 'command', command };
    }
    if (type && token) attestations.push({ type, token });
  });
  if (c.issues.length > before || address === undefined) return undefined;
  return { serverAddress: address, caFile, caPem, serverSpiffeId, attestations };
}

/**
 * Validates a raw configuration object (as parsed from YAML, JSON or HCL) into a {@link HelperConfig}.
 * Every problem is collected, each named by its key; unknown keys are errors.
 *
 * @param raw - The parsed file.
 * @param options - Source format, environment, working directory.
 * @returns The typed configuration.
 * @throws {HelperConfigError} ERR_CONFIG_INVALID listing every problem (`issues`).
 * @example
 * ```ts
 * const config = validateHelperConfig({ cert_dir: '/certs', svid_file_name: 'svid.pem',
 *   svid_key_file_name: 'svid_key.pem', svid_bundle_file_name: 'bundle.pem' });
 * ```
 */
export function validateHelperConfig(raw: unknown, options: ValidateOptions = {}): HelperConfig {
  const c = new Checker(options.format);
  if (!isObject(raw)) {
    throw new HelperConfigError([{ path: '(root)', message: `must be an object, got ${kind(raw)}` }]);
  }
  c.unknownKeys(raw, TOP_KEYS, '');
  const env = options.env ?? process.env;

  const cwd = options.cwd ?? process.cwd();
  const remoteRaw = raw.remote_attestation;
  const remoteAttestation =
    remoteRaw === undefined || remoteRaw === null ? undefined : remoteConfig(c, remoteRaw, cwd);
  const remoteSet = remoteRaw !== undefined && remoteRaw !== null;

  // Address: key, then SPIFFE_ENDPOINT_SOCKET, then the Tessera agent's default socket; none in remote mode.
  const addrRaw = c.string(raw, 'agent_address', 'agent_address');
  let agentAddress: string | undefined;
  if (remoteSet) {
    if (addrRaw !== undefined && addrRaw !== '') {
      c.add('agent_address', 'must not be set with remote_attestation (the helper uses one or the other)');
    }
  } else if (addrRaw !== undefined && addrRaw !== '')
    agentAddress = normalizeAddress(c, addrRaw, 'agent_address');
  else if (env.SPIFFE_ENDPOINT_SOCKET)
    agentAddress = normalizeAddress(c, env.SPIFFE_ENDPOINT_SOCKET, 'SPIFFE_ENDPOINT_SOCKET (environment)');
  else agentAddress = DEFAULT_AGENT_ADDRESS;

  const cmd = c.string(raw, 'cmd', 'cmd') || undefined;
  let cmdArgs: string[] = [];
  const argsRaw = raw.cmd_args;
  if (typeof argsRaw === 'string') {
    try {
      cmdArgs = splitCommandLine(argsRaw);
    } catch {
      c.add('cmd_args', `unterminated quote in ${JSON.stringify(argsRaw)}`);
    }
  } else if (Array.isArray(argsRaw)) {
    argsRaw.forEach((a, i) => {
      if (typeof a === 'string') cmdArgs.push(a);
      else c.add(`cmd_args[${i}]`, `must be a string, got ${kind(a)}`);
    });
  } else if (argsRaw !== undefined && argsRaw !== null) {
    c.add('cmd_args', `must be a string or a list of strings, got ${kind(argsRaw)}`);
  }
  if (cmdArgs.length > 0 && cmd === undefined) c.add('cmd_args', 'is set but cmd is not');

  const pidFileName = c.string(raw, 'pid_file_name', 'pid_file_name') || undefined;
  const signalRaw = c.string(raw, 'renew_signal', 'renew_signal') || undefined;
  let renewSignal: NodeJS.Signals | undefined;
  if (signalRaw !== undefined) {
    renewSignal = parseSignal(signalRaw);
    if (renewSignal === undefined) c.add('renew_signal', `unknown signal ${JSON.stringify(signalRaw)}`);
  }
  if (pidFileName !== undefined && signalRaw === undefined) {
    c.add('renew_signal', 'must be set when pid_file_name is set');
  }

  const certDir = resolve(cwd, c.string(raw, 'cert_dir', 'cert_dir') ?? '');
  const file = (key: string): string | undefined => {
    const v = c.string(raw, key, key);
    return v === undefined || v === '' ? undefined : resolve(certDir, v);
  };

  const svidFile = file('svid_file_name');
  const keyFile = file('svid_key_file_name');
  const bundleFile = file('svid_bundle_file_name');
  const x509Set = [svidFile, keyFile, bundleFile].filter((f) => f !== undefined).length;
  let x509: X509Outputs | undefined;
  if (x509Set === 3) x509 = { svidFile: svidFile!, keyFile: keyFile!, bundleFile: bundleFile! };
  else if (x509Set !== 0) {
    c.add(
      'svid_file_name',
      'all or none of svid_file_name, svid_key_file_name and svid_bundle_file_name must be set',
    );
  }

  const jwtSvids: JwtSvidOutput[] = [];
  const jwtRaw = raw.jwt_svids;
  if (jwtRaw !== undefined && jwtRaw !== null) {
    const list = Array.isArray(jwtRaw) ? jwtRaw : isObject(jwtRaw) ? [jwtRaw] : undefined;
    if (list === undefined) c.add('jwt_svids', `must be a list of objects, got ${kind(jwtRaw)}`);
    list?.forEach((entry, i) => {
      const p = `jwt_svids[${i}]`;
      if (!isObject(entry)) {
        c.add(p, `must be an object, got ${kind(entry)}`);
        return;
      }
      c.unknownKeys(entry, JWT_KEYS, `${p}.`);
      const audience = c.string(entry, 'jwt_audience', `${p}.jwt_audience`);
      const name = c.string(entry, 'jwt_svid_file_name', `${p}.jwt_svid_file_name`);
      if (!audience) c.add(`${p}.jwt_audience`, 'is required');
      if (!name) c.add(`${p}.jwt_svid_file_name`, 'is required');
      const extra: string[] = [];
      const extraRaw = entry.jwt_extra_audiences;
      if (Array.isArray(extraRaw)) {
        extraRaw.forEach((a, j) => {
          if (typeof a === 'string' && a !== '') extra.push(a);
          else c.add(`${p}.jwt_extra_audiences[${j}]`, 'must be a non-empty string');
        });
      } else if (extraRaw !== undefined && extraRaw !== null) {
        c.add(`${p}.jwt_extra_audiences`, `must be a list of strings, got ${kind(extraRaw)}`);
      }
      if (audience && name) jwtSvids.push({ audience, extraAudiences: extra, file: resolve(certDir, name) });
    });
  }
  const jwtBundleFile = file('jwt_bundle_file_name');
  if (x509 === undefined && jwtSvids.length === 0 && jwtBundleFile === undefined && c.issues.length === 0) {
    c.add(
      '(root)',
      'nothing to write: set svid_file_name, svid_key_file_name and svid_bundle_file_name, jwt_svids, or jwt_bundle_file_name',
    );
  }

  // Two outputs on one path would overwrite each other.
  const seen = new Map<string, string>();
  const outputs: [string, string | undefined][] = [
    ['svid_file_name', x509?.svidFile],
    ['svid_key_file_name', x509?.keyFile],
    ['svid_bundle_file_name', x509?.bundleFile],
    ['jwt_bundle_file_name', jwtBundleFile],
    ...jwtSvids.map((j, i): [string, string] => [`jwt_svids[${i}].jwt_svid_file_name`, j.file]),
  ];
  for (const [key, path] of outputs) {
    if (path === undefined) continue;
    const other = seen.get(path);
    if (other !== undefined) c.add(key, `writes the same file as ${other} (${JSON.stringify(path)})`);
    else seen.set(path, key);
  }

  const certFileMode = c.mode(raw, 'cert_file_mode', 'cert_file_mode', 0o644);
  const keyFileMode = c.mode(raw, 'key_file_mode', 'key_file_mode', 0o600);
  const jwtBundleFileMode = c.mode(raw, 'jwt_bundle_file_mode', 'jwt_bundle_file_mode', 0o600);
  const jwtSvidFileMode = c.mode(raw, 'jwt_svid_file_mode', 'jwt_svid_file_mode', 0o600);
  const hint = c.string(raw, 'hint', 'hint') ?? '';
  const daemonMode = c.bool(raw, 'daemon_mode', 'daemon_mode', true);
  if (!daemonMode && cmd !== undefined) {
    c.add('cmd', 'is not used when daemon_mode is false (use `tessera-helper exec -- <cmd>` instead)');
  }

  const hcRaw = raw.health_checks;
  let healthChecks: HealthChecksConfig = {
    listenerEnabled: false,
    bindPort: 8081,
    bindAddress: '0.0.0.0',
    livenessPath: '/live',
    readinessPath: '/ready',
  };
  if (hcRaw !== undefined && hcRaw !== null) {
    if (!isObject(hcRaw)) c.add('health_checks', `must be an object, got ${kind(hcRaw)}`);
    else {
      c.unknownKeys(hcRaw, HEALTH_KEYS, 'health_checks.');
      const port = hcRaw.bind_port;
      let bindPort = healthChecks.bindPort;
      if (port !== undefined && port !== null) {
        const n = typeof port === 'string' && /^[0-9]+$/.test(port) ? Number(port) : port;
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
          c.add('health_checks.bind_port', `must be a port number (0-65535), got ${JSON.stringify(port)}`);
        } else bindPort = n;
      }
      const path = (key: string, def: string): string => {
        const v = c.string(hcRaw, key, `health_checks.${key}`);
        if (v === undefined || v === '') return def;
        if (!v.startsWith('/'))
          c.add(`health_checks.${key}`, `must start with "/", got ${JSON.stringify(v)}`);
        return v;
      };
      healthChecks = {
        listenerEnabled: c.bool(hcRaw, 'listener_enabled', 'health_checks.listener_enabled', false),
        bindPort,
        bindAddress: c.string(hcRaw, 'bind_address', 'health_checks.bind_address') || '0.0.0.0',
        livenessPath: path('liveness_path', '/live'),
        readinessPath: path('readiness_path', '/ready'),
      };
      if (healthChecks.livenessPath === healthChecks.readinessPath) {
        c.add('health_checks.readiness_path', 'must differ from liveness_path');
      }
    }
  }
  const renewOnJwtSvidUpdate = c.bool(raw, 'renew_on_jwt_svid_update', 'renew_on_jwt_svid_update', true);
  // Type checks of the remaining booleans.
  const includeFederatedDomains = c.bool(
    raw,
    'include_federated_domains',
    'include_federated_domains',
    false,
  );
  const addIntermediatesToBundle = c.bool(
    raw,
    'add_intermediates_to_bundle',
    'add_intermediates_to_bundle',
    false,
  );

  if (remoteSet) {
    // The serverless API issues one identity and serves only the trust domain's own bundle.
    if (hint !== '') c.add('hint', 'is not used with remote_attestation (the server issues one identity)');
    if (includeFederatedDomains) {
      c.add(
        'include_federated_domains',
        'is not available with remote_attestation (the serverless API serves only the own trust domain bundle)',
      );
    }
  }

  if (c.issues.length > 0) throw new HelperConfigError(c.issues);
  return {
    agentAddress,
    remoteAttestation,
    cmd,
    cmdArgs,
    pidFileName: pidFileName === undefined ? undefined : resolve(cwd, pidFileName),
    renewSignal,
    certDir,
    x509,
    jwtSvids,
    jwtBundleFile,
    includeFederatedDomains,
    addIntermediatesToBundle,
    certFileMode,
    keyFileMode,
    jwtBundleFileMode,
    jwtSvidFileMode,
    hint,
    daemonMode,
    renewOnJwtSvidUpdate,
    healthChecks,
  };
}

/** Picks the format from a file name: `.hcl`/`.conf` → HCL, `.json` → JSON, `.yaml`/`.yml` → YAML. */
export function formatFromFileName(path: string): ConfigFormat | undefined {
  switch (extname(path).toLowerCase()) {
    case '.hcl':
    case '.conf':
      return 'hcl';
    case '.json':
      return 'json';
    case '.yaml':
    case '.yml':
      return 'yaml';
    default:
      return undefined;
  }
}

/**
 * Parses configuration text in the given format into a raw object (no validation).
 *
 * @throws {ConfigError} ERR_CONFIG_INVALID on a syntax error (with its position).
 * @example
 * ```ts
 * const raw = parseConfigText('cert_dir = "/certs"', 'hcl');
 * ```
 */
export function parseConfigText(text: string, format: ConfigFormat): unknown {
  try {
    switch (format) {
      case 'hcl':
        return parseHcl(text);
      case 'json':
        return JSON.parse(text);
      case 'yaml':
        return parseYaml(text, { uniqueKeys: true, prettyErrors: true });
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const detail = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ConfigError('ERR_CONFIG_INVALID', `helper config: invalid ${format.toUpperCase()}: ${detail}`, {
      cause: err,
    });
  }
}

/**
 * Reads, parses and validates a configuration file. The format comes from the extension (`.hcl`/`.conf`,
 * `.json`, `.yaml`/`.yml`); without a known extension the text is tried as JSON, then HCL, then YAML.
 *
 * @param path - The file.
 * @param options - Environment and working directory for validation.
 * @throws {ConfigError} ERR_CONFIG_INVALID when the file cannot be read or parsed, or fails validation
 *   ({@link HelperConfigError} with every issue).
 * @example
 * ```ts
 * const config = loadHelperConfig('/etc/tessera/helper.conf');
 * ```
 */
export function loadHelperConfig(path: string, options: Omit<ValidateOptions, 'format'> = {}): HelperConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `helper config: cannot read ${JSON.stringify(path)} (${code})`,
      {
        cause: err,
      },
    );
  }
  let format = formatFromFileName(path);
  if (format === undefined) {
    const trimmed = text.trimStart();
    format = trimmed.startsWith('{')
      ? 'json'
      : /^[A-Za-z_"][\w.-]*"?\s*(=|\{)/m.test(trimmed)
        ? 'hcl'
        : 'yaml';
  }
  return validateHelperConfig(parseConfigText(text, format), { ...options, format });
}
