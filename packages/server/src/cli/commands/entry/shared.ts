/**
 * Flags and input handling shared by the `entry` commands: building `spire.api.types.Entry` messages from flags
 * or from a `--data` file in SPIRE's JSON format, and the filters of `entry show` / `entry count`.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  CountEntriesRequest_Filter,
  Entry,
  type EntryMask,
  FederatesWithMatch,
  FederatesWithMatch_MatchBehavior,
  type Selector,
  SelectorMatch,
  SelectorMatch_MatchBehavior,
  type SPIFFEID,
} from '@tessera/common/api';
import { CliUsageError, type FlagSpec } from '../../args.js';
import type { CommandContext } from '../../context.js';
import {
  parseEnumValue,
  parseIdValue,
  parseSelectorValue,
  parseTimeValue,
  parseTrustDomainValue,
  parseTtlValue,
} from '../../values.js';

/** Flags describing an entry's fields (create and update). */
export const ENTRY_FIELD_FLAGS: readonly FlagSpec[] = [
  { name: 'entry-id', aliases: ['entryID'], kind: 'string', description: 'ID of the entry', valueName: 'ID' },
  {
    name: 'spiffe-id',
    aliases: ['spiffeID'],
    kind: 'string',
    description: 'SPIFFE ID the entry issues',
    valueName: 'ID',
  },
  {
    name: 'parent-id',
    aliases: ['parentID'],
    kind: 'string',
    description: 'SPIFFE ID of the parent (agent or alias)',
    valueName: 'ID',
  },
  { name: 'selector', kind: 'strings', description: 'selector "type:value"', valueName: 'SELECTOR' },
  {
    name: 'node',
    kind: 'bool',
    description: 'the entry is a node alias: its parent is the server (spiffe://<td>/spire/server)',
  },
  {
    name: 'x509-svid-ttl',
    aliases: ['x509SVIDTTL', 'ttl'],
    kind: 'string',
    description: 'X509-SVID lifetime (seconds or 90s/15m/1h; 0 = server default)',
    valueName: 'TTL',
  },
  {
    name: 'jwt-svid-ttl',
    aliases: ['jwtSVIDTTL'],
    kind: 'string',
    description: 'JWT-SVID lifetime (seconds or 90s/15m/1h; 0 = server default)',
    valueName: 'TTL',
  },
  {
    name: 'dns',
    aliases: ['dnsName'],
    kind: 'strings',
    description: 'DNS name in the X509-SVID',
    valueName: 'NAME',
  },
  {
    name: 'federates-with',
    aliases: ['federatesWith'],
    kind: 'strings',
    description: 'trust domain whose bundle the workload receives',
    valueName: 'TD',
  },
  { name: 'admin', kind: 'bool', description: 'SVIDs of this entry may call admin APIs' },
  { name: 'downstream', kind: 'bool', description: 'SVIDs of this entry may sign downstream CAs' },
  {
    name: 'store-svid',
    aliases: ['storeSVID'],
    kind: 'bool',
    description: 'the agent stores SVIDs of this entry through a SVIDStore',
  },
  {
    name: 'hint',
    kind: 'string',
    description: 'hint returned to workloads to tell SVIDs apart (at most 1024 bytes)',
    valueName: 'TEXT',
  },
  {
    name: 'entry-expiry',
    aliases: ['entryExpiry'],
    kind: 'string',
    description: 'expiry of the entry (Unix seconds or RFC 3339)',
    valueName: 'TIME',
  },
  {
    name: 'data',
    kind: 'string',
    description: 'JSON file of entries in SPIRE\'s format ({"entries": [...]})',
    valueName: 'FILE',
  },
];

/** The entry built from flags and which fields were given (for update masks). */
export interface EntryFromFlags {
  readonly entry: Entry;
  readonly given: Partial<Record<keyof EntryMask, true>>;
}

const FIELD_FLAG_NAMES = ENTRY_FIELD_FLAGS.map((f) => f.name).filter((n) => n !== 'data');

/** Whether any entry field flag was given. */
export function anyEntryFieldFlag(ctx: CommandContext, except: readonly string[] = []): string | undefined {
  for (const n of FIELD_FLAG_NAMES) {
    if (except.includes(n)) continue;
    if (ctx.flags.strings.has(n) || ctx.flags.lists.has(n) || ctx.flags.bools.has(n)) return n;
  }
  return undefined;
}

/**
 * Builds an entry from the field flags; `--node` sets the parent to `spiffe://<td>/spire/server`.
 *
 * @throws {CliUsageError} ERR_CLI_USAGE on any malformed value (naming the flag)
 */
export function entryFromFlags(ctx: CommandContext): EntryFromFlags {
  const f = ctx.flags;
  const cmd = ctx.name;
  const given: Partial<Record<keyof EntryMask, true>> = {};
  const partial: Partial<Entry> = {};
  const entryId = f.strings.get('entry-id');
  if (entryId !== undefined) partial.id = entryId;
  const spiffeId = f.strings.get('spiffe-id');
  if (spiffeId !== undefined) {
    partial.spiffeId = parseIdValue(cmd, 'spiffe-id', spiffeId);
    given.spiffeId = true;
  }
  const parentId = f.strings.get('parent-id');
  const node = f.bools.get('node') === true;
  if (parentId !== undefined && node)
    throw new CliUsageError(`${cmd}: --parent-id and --node cannot be used together`);
  if (parentId !== undefined) {
    partial.parentId = parseIdValue(cmd, 'parent-id', parentId);
    given.parentId = true;
  } else if (node) {
    if (partial.spiffeId === undefined) throw new CliUsageError(`${cmd}: --node needs --spiffe-id`);
    partial.parentId = { trustDomain: partial.spiffeId.trustDomain, path: '/spire/server' };
    given.parentId = true;
  }
  const selectors = f.lists.get('selector');
  if (selectors !== undefined) {
    partial.selectors = selectors.map((s) => parseSelectorValue(cmd, s));
    given.selectors = true;
  }
  const x509Ttl = f.strings.get('x509-svid-ttl');
  if (x509Ttl !== undefined) {
    partial.x509SvidTtl = parseTtlValue(cmd, 'x509-svid-ttl', x509Ttl);
    given.x509SvidTtl = true;
  }
  const jwtTtl = f.strings.get('jwt-svid-ttl');
  if (jwtTtl !== undefined) {
    partial.jwtSvidTtl = parseTtlValue(cmd, 'jwt-svid-ttl', jwtTtl);
    given.jwtSvidTtl = true;
  }
  const dns = f.lists.get('dns');
  if (dns !== undefined) {
    partial.dnsNames = [...dns];
    given.dnsNames = true;
  }
  const fw = f.lists.get('federates-with');
  if (fw !== undefined) {
    partial.federatesWith = fw.map((t) => parseTrustDomainValue(cmd, 'federates-with', t));
    given.federatesWith = true;
  }
  for (const [flag, key] of [
    ['admin', 'admin'],
    ['downstream', 'downstream'],
    ['store-svid', 'storeSvid'],
  ] as const) {
    const v = f.bools.get(flag);
    if (v !== undefined) {
      partial[key] = v;
      given[key] = true;
    }
  }
  const hint = f.strings.get('hint');
  if (hint !== undefined) {
    partial.hint = hint;
    given.hint = true;
  }
  const expiry = f.strings.get('entry-expiry');
  if (expiry !== undefined) {
    partial.expiresAt = parseTimeValue(cmd, 'entry-expiry', expiry);
    given.expiresAt = true;
  }
  return { entry: Entry.fromPartial(partial), given };
}

// ----------------------------------------------------------------------------------------------------------------
// --data files

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: Json | undefined): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads a JSON file, failing with a usage error naming the flag. */
export async function readJsonFile(ctx: CommandContext, flag: string, path: string): Promise<Json> {
  let text: string;
  try {
    text = await readFile(resolve(ctx.io.cwd, path), 'utf8');
  } catch (err) {
    throw new CliUsageError(
      `${ctx.name}: cannot read --${flag} ${JSON.stringify(path)}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  try {
    return JSON.parse(text) as Json;
  } catch (err) {
    throw new CliUsageError(
      `${ctx.name}: --${flag} ${JSON.stringify(path)} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}

const ENTRY_KEYS: Readonly<Record<string, keyof Entry>> = {
  id: 'id',
  entry_id: 'id',
  spiffe_id: 'spiffeId',
  spiffeId: 'spiffeId',
  parent_id: 'parentId',
  parentId: 'parentId',
  selectors: 'selectors',
  x509_svid_ttl: 'x509SvidTtl',
  x509SvidTtl: 'x509SvidTtl',
  jwt_svid_ttl: 'jwtSvidTtl',
  jwtSvidTtl: 'jwtSvidTtl',
  federates_with: 'federatesWith',
  federatesWith: 'federatesWith',
  admin: 'admin',
  downstream: 'downstream',
  expires_at: 'expiresAt',
  expiresAt: 'expiresAt',
  entry_expiry: 'expiresAt',
  dns_names: 'dnsNames',
  dnsNames: 'dnsNames',
  store_svid: 'storeSvid',
  storeSvid: 'storeSvid',
  hint: 'hint',
  revision_number: 'revisionNumber',
  revisionNumber: 'revisionNumber',
  created_at: 'createdAt',
  createdAt: 'createdAt',
};

/**
 * Parses SPIRE's entry file format, `{"entries": [{ "spiffe_id": {"trust_domain", "path"}, "parent_id": …,
 * "selectors": [{"type", "value"}], "x509_svid_ttl", "jwt_svid_ttl", "federates_with", "admin", "downstream",
 * "expires_at", "dns_names", "store_svid", "hint" }]}` (protobuf JSON: snake_case or camelCase keys). SPIFFE IDs
 * may also be written as strings. Unknown keys and wrong types are errors naming the path
 * (`entries[2].selectors[0].type`).
 *
 * @throws {CliUsageError} ERR_CLI_USAGE on the first problem found
 */
export function parseEntriesDocument(cmd: string, doc: Json): Entry[] {
  const fail = (path: string, msg: string): never => {
    throw new CliUsageError(`${cmd}: --data: ${path} ${msg}`);
  };
  if (!isObject(doc)) return fail('document', 'must be a JSON object with "entries"');
  for (const k of Object.keys(doc))
    if (k !== 'entries') fail(JSON.stringify(k), 'is not a known key (expected "entries")');
  const list = doc.entries;
  if (!Array.isArray(list)) return fail('entries', 'must be an array');
  if (list.length === 0) fail('entries', 'must not be empty');
  return list.map((item, i) => {
    const at = `entries[${i}]`;
    if (!isObject(item)) return fail(at, 'must be an object');
    const p: Partial<Entry> = {};
    for (const [k, v] of Object.entries(item)) {
      const key = ENTRY_KEYS[k];
      const path = `${at}.${k}`;
      if (key === undefined) fail(path, 'is not a known entry field');
      switch (key) {
        case 'id':
        case 'hint':
          if (typeof v !== 'string') fail(path, 'must be a string');
          p[key] = v as string;
          break;
        case 'spiffeId':
        case 'parentId':
          p[key] = jsonId(cmd, path, v, fail);
          break;
        case 'selectors':
          p.selectors = jsonArray(path, v, fail).map((s, j) => jsonSelector(cmd, `${path}[${j}]`, s, fail));
          break;
        case 'x509SvidTtl':
        case 'jwtSvidTtl':
          p[key] = jsonInt(path, v, 0, 2 ** 31 - 1, fail);
          break;
        case 'federatesWith':
        case 'dnsNames':
          p[key] = jsonArray(path, v, fail).map((s, j) =>
            typeof s === 'string' ? s : fail(`${path}[${j}]`, 'must be a string'),
          );
          break;
        case 'admin':
        case 'downstream':
        case 'storeSvid':
          if (typeof v !== 'boolean') fail(path, 'must be true or false');
          p[key] = v as boolean;
          break;
        case 'expiresAt':
        case 'revisionNumber':
        case 'createdAt':
          p[key] = BigInt(jsonInt(path, v, 0, Number.MAX_SAFE_INTEGER, fail));
          break;
        default:
          fail(path, 'is not a known entry field');
      }
    }
    return Entry.fromPartial(p);
  });
}

type Fail = (path: string, msg: string) => never;

function jsonArray(path: string, v: Json, fail: Fail): Json[] {
  return Array.isArray(v) ? v : fail(path, 'must be an array');
}

function jsonInt(path: string, v: Json, min: number, max: number, fail: Fail): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
    return fail(path, `must be an integer from ${min} to ${max}`);
  }
  return n;
}

function jsonId(cmd: string, path: string, v: Json, fail: Fail): SPIFFEID {
  if (typeof v === 'string') {
    try {
      return parseIdValue(cmd, path, v);
    } catch (err) {
      return fail(path, `is not a valid SPIFFE ID: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (!isObject(v)) return fail(path, 'must be {"trust_domain": ..., "path": ...} or a SPIFFE ID string');
  const td = v.trust_domain ?? v.trustDomain;
  const idPath = v.path ?? '';
  for (const k of Object.keys(v)) {
    if (!['trust_domain', 'trustDomain', 'path'].includes(k)) fail(`${path}.${k}`, 'is not a known key');
  }
  if (typeof td !== 'string' || td === '') return fail(`${path}.trust_domain`, 'must be a non-empty string');
  if (typeof idPath !== 'string') return fail(`${path}.path`, 'must be a string');
  return { trustDomain: td, path: idPath };
}

function jsonSelector(cmd: string, path: string, v: Json, fail: Fail): Selector {
  if (typeof v === 'string') return parseSelectorValue(cmd, v, path);
  if (!isObject(v)) return fail(path, 'must be {"type": ..., "value": ...}');
  for (const k of Object.keys(v))
    if (k !== 'type' && k !== 'value') fail(`${path}.${k}`, 'is not a known key');
  if (typeof v.type !== 'string' || v.type === '') return fail(`${path}.type`, 'must be a non-empty string');
  if (v.type.includes(':'))
    return fail(`${path}.type`, `must not contain ":" (got ${JSON.stringify(v.type)})`);
  if (typeof v.value !== 'string' || v.value === '')
    return fail(`${path}.value`, 'must be a non-empty string');
  return { type: v.type, value: v.value };
}

// ----------------------------------------------------------------------------------------------------------------
// Filters (show, count)

/** Filter flags of `entry show` and `entry count`. */
export const ENTRY_FILTER_FLAGS: readonly FlagSpec[] = [
  {
    name: 'spiffe-id',
    aliases: ['spiffeID'],
    kind: 'string',
    description: 'only entries with this SPIFFE ID',
    valueName: 'ID',
  },
  {
    name: 'parent-id',
    aliases: ['parentID'],
    kind: 'string',
    description: 'only entries with this parent',
    valueName: 'ID',
  },
  { name: 'selector', kind: 'strings', description: 'selector "type:value" to match', valueName: 'SELECTOR' },
  {
    name: 'match',
    aliases: ['matchSelectorsOn'],
    kind: 'string',
    description: 'selector match: exact, subset, superset (default) or any',
    valueName: 'MODE',
  },
  {
    name: 'federates-with',
    aliases: ['federatesWith'],
    kind: 'strings',
    description: 'federated trust domain to match',
    valueName: 'TD',
  },
  {
    name: 'match-federates-with',
    aliases: ['matchFederatesWithOn'],
    kind: 'string',
    description: 'federates-with match: exact, subset, superset (default) or any',
    valueName: 'MODE',
  },
  { name: 'hint', kind: 'string', description: 'only entries with this hint', valueName: 'TEXT' },
  {
    name: 'downstream',
    kind: 'bool',
    description: 'only downstream entries (--downstream=false: only others)',
  },
];

const MATCH_WORDS = ['exact', 'subset', 'superset', 'any'] as const;
const SELECTOR_MATCH: Readonly<Record<(typeof MATCH_WORDS)[number], SelectorMatch_MatchBehavior>> = {
  exact: SelectorMatch_MatchBehavior.MATCH_EXACT,
  subset: SelectorMatch_MatchBehavior.MATCH_SUBSET,
  superset: SelectorMatch_MatchBehavior.MATCH_SUPERSET,
  any: SelectorMatch_MatchBehavior.MATCH_ANY,
};
const FW_MATCH: Readonly<Record<(typeof MATCH_WORDS)[number], FederatesWithMatch_MatchBehavior>> = {
  exact: FederatesWithMatch_MatchBehavior.MATCH_EXACT,
  subset: FederatesWithMatch_MatchBehavior.MATCH_SUBSET,
  superset: FederatesWithMatch_MatchBehavior.MATCH_SUPERSET,
  any: FederatesWithMatch_MatchBehavior.MATCH_ANY,
};

/**
 * Builds the entry filter (shared by ListEntries and CountEntries, whose filters have the same fields).
 *
 * @throws {CliUsageError} ERR_CLI_USAGE on malformed values, or a match mode without values to match
 */
export function entryFilterFromFlags(ctx: CommandContext): CountEntriesRequest_Filter {
  const f = ctx.flags;
  const cmd = ctx.name;
  const filter: Partial<CountEntriesRequest_Filter> = {};
  const spiffeId = f.strings.get('spiffe-id');
  if (spiffeId !== undefined) filter.bySpiffeId = parseIdValue(cmd, 'spiffe-id', spiffeId);
  const parentId = f.strings.get('parent-id');
  if (parentId !== undefined) filter.byParentId = parseIdValue(cmd, 'parent-id', parentId);
  const selectors = f.lists.get('selector');
  const match = f.strings.get('match');
  if (selectors !== undefined) {
    const mode = parseEnumValue(cmd, 'match', match ?? 'superset', MATCH_WORDS);
    filter.bySelectors = SelectorMatch.fromPartial({
      selectors: selectors.map((s) => parseSelectorValue(cmd, s)),
      match: SELECTOR_MATCH[mode],
    });
  } else if (match !== undefined) {
    throw new CliUsageError(`${cmd}: --match needs at least one --selector`);
  }
  const fw = f.lists.get('federates-with');
  const fwMatch = f.strings.get('match-federates-with');
  if (fw !== undefined) {
    const mode = parseEnumValue(cmd, 'match-federates-with', fwMatch ?? 'superset', MATCH_WORDS);
    filter.byFederatesWith = FederatesWithMatch.fromPartial({
      trustDomains: fw.map((t) => parseTrustDomainValue(cmd, 'federates-with', t)),
      match: FW_MATCH[mode],
    });
  } else if (fwMatch !== undefined) {
    throw new CliUsageError(`${cmd}: --match-federates-with needs at least one --federates-with`);
  }
  const hint = f.strings.get('hint');
  if (hint !== undefined) filter.byHint = hint;
  const downstream = f.bools.get('downstream');
  if (downstream !== undefined) filter.byDownstream = downstream;
  return CountEntriesRequest_Filter.fromPartial(filter);
}
