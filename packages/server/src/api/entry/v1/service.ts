/**
 * The Entry service (`spire.api.server.entry.v1.Entry`): batch create/update/delete, get, list, count, and the
 * agent's GetAuthorizedEntries / SyncAuthorizedEntries, with SPIRE's semantics and status codes.
 *
 * @module
 */
import { type ServerDuplexStream, status } from '@grpc/grpc-js';
import {
  type Entry as ApiEntry,
  type EntryMask as ApiEntryMask,
  type BatchCreateEntryResponse_Result,
  type BatchDeleteEntryResponse_Result,
  type BatchUpdateEntryResponse_Result,
  type EntryServer,
  FederatesWithMatch_MatchBehavior,
  GrpcStatusError,
  invalidArgument,
  type ListEntriesRequest_Filter,
  type SelectorMatch,
  SelectorMatch_MatchBehavior,
  type SyncAuthorizedEntriesRequest,
  type SyncAuthorizedEntriesResponse,
} from '@tessera/common/api';
import type { EntryMask, ListEntriesRequest } from '../../../datastore/datastore.js';
import type { MatchMode, RegistrationEntry } from '../../../datastore/types.js';
import { MAX_PAGE_SIZE } from '../../../datastore/validate.js';
import { type ApiContext, agentOf, unary } from '../../context.js';
import {
  entryToApi,
  FULL_ENTRY_MASK,
  mapError,
  OK_STATUS,
  parseEntry,
  parseLocalId,
  parseSelectors,
  parseTrustDomainName,
  statusOf,
} from '../../convert.js';

function matchMode(field: string, m: number): MatchMode {
  switch (m) {
    case SelectorMatch_MatchBehavior.MATCH_EXACT:
      return 'exact';
    case SelectorMatch_MatchBehavior.MATCH_SUBSET:
      return 'subset';
    case SelectorMatch_MatchBehavior.MATCH_SUPERSET:
      return 'superset';
    case SelectorMatch_MatchBehavior.MATCH_ANY:
      return 'any';
    default:
      throw invalidArgument(field, `unknown match behavior ${m}`);
  }
}

function fwMatchMode(m: number): MatchMode {
  switch (m) {
    case FederatesWithMatch_MatchBehavior.MATCH_EXACT:
      return 'exact';
    case FederatesWithMatch_MatchBehavior.MATCH_SUBSET:
      return 'subset';
    case FederatesWithMatch_MatchBehavior.MATCH_SUPERSET:
      return 'superset';
    case FederatesWithMatch_MatchBehavior.MATCH_ANY:
      return 'any';
    default:
      throw invalidArgument('filter.by_federates_with.match', `unknown match behavior ${m}`);
  }
}

function parseFilter(
  ctx: ApiContext,
  f: ListEntriesRequest_Filter | undefined,
): Omit<ListEntriesRequest, 'pagination'> {
  if (f === undefined) return {};
  const out: { -readonly [K in keyof ListEntriesRequest]?: ListEntriesRequest[K] } = {};
  if (f.bySpiffeId !== undefined)
    out.bySpiffeId = parseLocalId('filter.by_spiffe_id', f.bySpiffeId, ctx.trustDomain).toString();
  if (f.byParentId !== undefined)
    out.byParentId = parseLocalId('filter.by_parent_id', f.byParentId, ctx.trustDomain).toString();
  const sel: SelectorMatch | undefined = f.bySelectors;
  if (sel !== undefined) {
    out.bySelectors = {
      selectors: parseSelectors('filter.by_selectors', sel.selectors, true),
      match: matchMode('filter.by_selectors.match', sel.match),
    };
  }
  if (f.byFederatesWith !== undefined) {
    if (f.byFederatesWith.trustDomains.length === 0) {
      throw invalidArgument('filter.by_federates_with', 'at least one trust domain is required');
    }
    out.byFederatesWith = {
      trustDomains: f.byFederatesWith.trustDomains.map((t) =>
        parseTrustDomainName('filter.by_federates_with', t),
      ),
      match: fwMatchMode(f.byFederatesWith.match),
    };
  }
  if (f.byHint !== undefined) out.byHint = f.byHint;
  return out;
}

const ENTRY_FIELDS: readonly (keyof EntryMask & keyof ApiEntryMask)[] = [
  'spiffeId',
  'parentId',
  'selectors',
  'x509SvidTtl',
  'jwtSvidTtl',
  'dnsNames',
  'federatesWith',
  'admin',
  'downstream',
  'storeSvid',
  'hint',
  'expiresAt',
];

function isFullMask(m: ApiEntryMask | undefined): boolean {
  return m === undefined;
}

/** Creates the Entry service implementation. */
export function createEntryService(ctx: ApiContext): EntryServer {
  const pageSize = (n: number): number => {
    if (!Number.isInteger(n) || n < 0) throw invalidArgument('page_size', 'must not be negative');
    return n === 0 ? MAX_PAGE_SIZE : Math.min(n, MAX_PAGE_SIZE);
  };
  const downstreamFilter = (entries: RegistrationEntry[], d: boolean | undefined): RegistrationEntry[] =>
    d === undefined ? entries : entries.filter((e) => e.downstream === d);

  return {
    countEntries: unary(ctx, async (req) => {
      const filter = parseFilter(ctx, req.filter);
      try {
        if (req.filter?.byDownstream === undefined)
          return { count: await ctx.datastore.countEntries(filter) };
        let count = 0;
        let token: string | undefined;
        do {
          const page = await ctx.datastore.listEntries({
            ...filter,
            pagination: { token, pageSize: MAX_PAGE_SIZE },
          });
          count += downstreamFilter(page.items, req.filter.byDownstream).length;
          token = page.nextPageToken;
        } while (token !== undefined);
        return { count };
      } catch (err) {
        throw mapError(err, 'entries');
      }
    }),

    listEntries: unary(ctx, async (req) => {
      const filter = parseFilter(ctx, req.filter);
      const size = pageSize(req.pageSize);
      try {
        const page = await ctx.datastore.listEntries({
          ...filter,
          pagination: { token: req.pageToken === '' ? undefined : req.pageToken, pageSize: size },
        });
        return {
          entries: downstreamFilter(page.items, req.filter?.byDownstream).map((e) =>
            entryToApi(e, req.outputMask),
          ),
          nextPageToken: page.nextPageToken ?? '',
        };
      } catch (err) {
        throw mapError(err, 'entries');
      }
    }),

    getEntry: unary(ctx, async (req) => {
      if (req.id === '') throw invalidArgument('id', 'missing ID');
      let e: RegistrationEntry | undefined;
      try {
        e = await ctx.datastore.fetchEntry(req.id);
      } catch (err) {
        throw mapError(err, 'entry');
      }
      if (e === undefined) throw new GrpcStatusError(status.NOT_FOUND, 'entry not found');
      return entryToApi(e, req.outputMask);
    }),

    batchCreateEntry: unary(ctx, async (req) => {
      const results: BatchCreateEntryResponse_Result[] = [];
      for (const [i, input] of req.entries.entries()) {
        try {
          const parsed = parseEntry(input, ctx.trustDomain);
          const stored = await ctx.datastore.createEntry(parsed);
          results.push({ status: OK_STATUS, entry: entryToApi(stored, req.outputMask) });
        } catch (err) {
          const mapped = mapError(err, 'entry');
          if (mapped.code === status.ALREADY_EXISTS) {
            results.push({
              status: { code: status.ALREADY_EXISTS, message: 'similar entry already exists' },
              entry: undefined,
            });
          } else {
            results.push({ status: statusOf(mapped), entry: undefined });
          }
          ctx.log.warn({ err, index: i }, 'Entry not created');
        }
      }
      await ctx.index.refresh();
      return { results };
    }),

    batchUpdateEntry: unary(ctx, async (req) => {
      const results: BatchUpdateEntryResponse_Result[] = [];
      const inputMask = req.inputMask;
      for (const input of req.entries) {
        try {
          if (input.id === '') throw invalidArgument('id', 'missing ID');
          const current = await ctx.datastore.fetchEntry(input.id);
          if (current === undefined) throw new GrpcStatusError(status.NOT_FOUND, 'entry not found');
          const full = isFullMask(inputMask);
          // Fill unmasked fields from the stored entry, then validate the whole result.
          const cur = entryToApi(current, FULL_ENTRY_MASK);
          const merged: ApiEntry = { ...cur };
          const mask: EntryMask = {};
          for (const f of ENTRY_FIELDS) {
            if (full || inputMask?.[f]) {
              (merged as unknown as Record<string, unknown>)[f] = input[f];
              mask[f] = true;
            }
          }
          const parsed = parseEntry({ ...merged, id: '' }, ctx.trustDomain);
          const stored = await ctx.datastore.updateEntry({ ...current, ...parsed, id: current.id }, mask);
          results.push({ status: OK_STATUS, entry: entryToApi(stored, req.outputMask) });
        } catch (err) {
          results.push({ status: statusOf(mapError(err, 'entry')), entry: undefined });
        }
      }
      await ctx.index.refresh();
      return { results };
    }),

    batchDeleteEntry: unary(ctx, async (req) => {
      const results: BatchDeleteEntryResponse_Result[] = [];
      for (const id of req.ids) {
        try {
          if (id === '') throw invalidArgument('ids', 'missing ID');
          await ctx.datastore.deleteEntry(id);
          results.push({ status: OK_STATUS, id });
        } catch (err) {
          results.push({ status: statusOf(mapError(err, 'entry')), id });
        }
      }
      await ctx.index.refresh();
      return { results };
    }),

    getAuthorizedEntries: unary(ctx, async (req, call) => {
      const agentId = agentOf(ctx, call);
      return { entries: ctx.index.authorizedEntries(agentId).map((e) => entryToApi(e, req.outputMask)) };
    }),

    syncAuthorizedEntries(
      call: ServerDuplexStream<SyncAuthorizedEntriesRequest, SyncAuthorizedEntriesResponse>,
    ) {
      // Tessera agents use Sync.WatchAuthorizedEntries + GetAuthorizedEntries; this answers the first request
      // with every authorized entry in pages, as SPIRE does for small sets.
      let agentId: string;
      try {
        agentId = agentOf(ctx, call);
      } catch (err) {
        call.emit('error', err);
        return;
      }
      call.once('data', (req: SyncAuthorizedEntriesRequest) => {
        const entries = ctx.index.authorizedEntries(agentId).map((e) => entryToApi(e, req.outputMask));
        for (let i = 0; i < entries.length || i === 0; i += 1000) {
          const chunk = entries.slice(i, i + 1000);
          call.write({ entryRevisions: [], entries: chunk, more: i + 1000 < entries.length });
          if (entries.length === 0) break;
        }
        call.end();
      });
    },
  };
}
