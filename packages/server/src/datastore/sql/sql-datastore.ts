/**
 * The SQL datastore: one implementation over Kysely for SQLite, PostgreSQL and MariaDB/MySQL.
 *
 * Write transactions that change entries or nodes first lock the single `change_sequence` row, so they are
 * serialized and the change sequence grows in commit order: a follower reading `events` after sequence N never
 * misses a change that commits later with a smaller number.
 *
 * @module
 */
import { createHash, randomUUID } from 'node:crypto';
import { DatastoreError, SpiffeError } from '@tessera/spiffe/errors';
import { type Kysely, type RawBuilder, type Selectable, type SqlBool, sql } from 'kysely';
import type {
  AttestedNodeMask,
  Datastore,
  DatastoreEngine,
  DeleteBundleMode,
  EntryMask,
  FederationRelationshipMask,
  ListAttestedNodesRequest,
  ListEntriesRequest,
  ListRequest,
} from '../datastore.js';
import type {
  AttestedNode,
  Bundle,
  BundleEndpointProfile,
  CaJournal,
  ChangeAction,
  ChangeEvent,
  ChangeKind,
  FederationRelationship,
  JoinToken,
  MatchMode,
  NewAttestedNode,
  NewRegistrationEntry,
  Page,
  Pagination,
  RegistrationEntry,
  Selector,
} from '../types.js';
import {
  checkBundle,
  checkCaJournal,
  checkEntry,
  checkFederationRelationship,
  checkJoinToken,
  checkKey,
  checkNode,
  checkPagination,
  checkSelectors,
  encodePageToken,
  invalid,
  quote,
} from '../validate.js';
import { driverErrorCode, type EngineAdapter } from './dialects/adapter.js';
import type {
  AttestedNodesTable,
  BundlesTable,
  CaJournalsTable,
  DatabaseSchema,
  EntriesTable,
  FederationRelationshipsTable,
} from './schema.js';

type Db = Kysely<DatabaseSchema>;
type EntryRow = Selectable<EntriesTable>;
type NodeRow = Selectable<AttestedNodesTable>;
/** Tables with one row per trust domain. */
type TrustDomainTable = 'bundles' | 'federation_relationships';

/** Rows per multi-row INSERT (well under every engine's bound-parameter limit). */
const CHUNK = 500;
const DEFAULT_INDEX_BATCH = 5_000;
/** Operation names (first word) that only read. */
const READ_OP = /^(fetch|list|count|get|read) /;

function num(v: number | string | bigint): number {
  return typeof v === 'number' ? v : Number(v);
}

function optDate(v: number | string | null): Date | undefined {
  return v === null ? undefined : new Date(num(v));
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function compareSelectors(a: Selector, b: Selector): number {
  if (a.type !== b.type) return a.type < b.type ? -1 : 1;
  if (a.value !== b.value) return a.value < b.value ? -1 : 1;
  return 0;
}

/** Hash of what makes two entries duplicates (SPIRE: same SPIFFE ID, parent ID and selector set). */
function entryUniqueKey(e: Pick<RegistrationEntry, 'spiffeId' | 'parentId' | 'selectors'>): string {
  const sels = [...e.selectors].sort(compareSelectors).map((s) => [s.type, s.value]);
  return createHash('sha256')
    .update(JSON.stringify([e.spiffeId, e.parentId, sels]))
    .digest('hex');
}

function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function toEntry(r: EntryRow): RegistrationEntry {
  return {
    id: r.id,
    spiffeId: r.spiffe_id,
    parentId: r.parent_id,
    selectors: JSON.parse(r.selectors) as Selector[],
    x509SvidTtl: num(r.x509_svid_ttl),
    jwtSvidTtl: num(r.jwt_svid_ttl),
    dnsNames: JSON.parse(r.dns_names) as string[],
    federatesWith: JSON.parse(r.federates_with) as string[],
    admin: num(r.admin) === 1,
    downstream: num(r.downstream) === 1,
    storeSvid: num(r.store_svid) === 1,
    hint: r.hint,
    expiresAt: optDate(r.expires_at),
    revision: num(r.revision),
    createdAt: new Date(num(r.created_at)),
  };
}

function entryColumns(e: RegistrationEntry) {
  return {
    id: e.id,
    spiffe_id: e.spiffeId,
    parent_id: e.parentId,
    selectors: JSON.stringify(e.selectors.map((s) => ({ type: s.type, value: s.value }))),
    selector_count: e.selectors.length,
    federates_with: JSON.stringify(e.federatesWith),
    federates_with_count: e.federatesWith.length,
    dns_names: JSON.stringify(e.dnsNames),
    x509_svid_ttl: e.x509SvidTtl,
    jwt_svid_ttl: e.jwtSvidTtl,
    admin: e.admin ? 1 : 0,
    downstream: e.downstream ? 1 : 0,
    store_svid: e.storeSvid ? 1 : 0,
    hint: e.hint,
    expires_at: e.expiresAt === undefined ? null : e.expiresAt.getTime(),
    revision: e.revision,
    created_at: e.createdAt.getTime(),
    unique_key: entryUniqueKey(e),
  };
}

function toNode(r: NodeRow, selectors: Selector[]): AttestedNode {
  return {
    spiffeId: r.spiffe_id,
    attestationType: r.attestation_type,
    certSerial: r.cert_serial,
    certNotAfter: new Date(num(r.cert_not_after)),
    newCertSerial: r.new_cert_serial ?? undefined,
    newCertNotAfter: optDate(r.new_cert_not_after),
    banned: num(r.banned) === 1,
    selectors,
    canReattest: num(r.can_reattest) === 1,
  };
}

function nodeColumns(n: Omit<AttestedNode, 'selectors'>) {
  return {
    spiffe_id: n.spiffeId,
    attestation_type: n.attestationType,
    cert_serial: n.certSerial,
    cert_not_after: n.certNotAfter.getTime(),
    new_cert_serial: n.newCertSerial ?? null,
    new_cert_not_after: n.newCertNotAfter === undefined ? null : n.newCertNotAfter.getTime(),
    banned: n.banned ? 1 : 0,
    can_reattest: n.canReattest ? 1 : 0,
  };
}

function toBundle(r: Selectable<BundlesTable>): Bundle {
  return { trustDomain: r.trust_domain, data: new Uint8Array(r.data), sequence: num(r.sequence) };
}

function toRelationship(r: Selectable<FederationRelationshipsTable>): FederationRelationship {
  return {
    trustDomain: r.trust_domain,
    bundleEndpointUrl: r.bundle_endpoint_url,
    profile: r.profile as BundleEndpointProfile,
    endpointSpiffeId: r.endpoint_spiffe_id ?? undefined,
  };
}

function toJournal(r: Selectable<CaJournalsTable>): CaJournal {
  return {
    id: num(r.id),
    activeX509AuthorityId: r.active_x509_authority_id,
    activeJwtAuthorityId: r.active_jwt_authority_id,
    entries: r.entries,
    expiresAt: new Date(num(r.expires_at)),
  };
}

function checkBefore(field: string, d: unknown): asserts d is Date {
  if (!(d instanceof Date) || Number.isNaN(d.getTime()))
    throw new TypeError(`datastore: ${field} must be a Date`);
}

function notFound(what: string): never {
  throw new DatastoreError('ERR_DATASTORE_NOT_FOUND', `datastore: ${what} not found`);
}

function dedupeSelectors(sels: readonly Selector[]): Selector[] {
  const m = new Map<string, Selector>();
  for (const s of sels) m.set(JSON.stringify([s.type, s.value]), s);
  return [...m.values()];
}

/**
 * The condition "the record's set matches the given set under `mode`" (SPIRE's match modes), as uncorrelated
 * `IN` subqueries that use the (type, value) / trust_domain indexes.
 * - `members`: rows of the set table matching one of the given elements, as `(key)`;
 * - `subsetKeys`: keys whose every element is given (grouped against the record's element count).
 */
function matchCondition(
  mode: MatchMode,
  n: number,
  outerKey: RawBuilder<unknown>,
  outerCount: RawBuilder<unknown>,
  matched: (having: 'any' | 'all' | 'count') => RawBuilder<unknown>,
): RawBuilder<SqlBool> {
  if (n === 0) {
    switch (mode) {
      case 'exact':
      case 'subset':
        return sql<SqlBool>`${outerCount} = 0`;
      case 'superset':
        return sql<SqlBool>`1 = 1`;
      case 'any':
        return sql<SqlBool>`1 = 0`;
    }
  }
  switch (mode) {
    case 'any':
      return sql<SqlBool>`${outerKey} IN (${matched('any')})`;
    case 'superset':
      return sql<SqlBool>`${outerKey} IN (${matched('all')})`;
    case 'exact':
      return sql<SqlBool>`(${outerCount} = ${n} AND ${outerKey} IN (${matched('all')}))`;
    case 'subset':
      return sql<SqlBool>`(${outerCount} = 0 OR ${outerKey} IN (${matched('count')}))`;
  }
}

function selectorMatch(alias: string, sels: readonly Selector[]): RawBuilder<unknown> {
  return sql.join(
    sels.map(
      (s) => sql`(${sql.ref(`${alias}.type`)} = ${s.type} AND ${sql.ref(`${alias}.value`)} = ${s.value})`,
    ),
    sql` OR `,
  );
}

function checkMatchMode(field: string, mode: unknown): asserts mode is MatchMode {
  if (mode !== 'exact' && mode !== 'subset' && mode !== 'superset' && mode !== 'any') {
    throw new RangeError(
      `datastore: ${field}.match must be exact, subset, superset or any, got ${quote(mode)}`,
    );
  }
}

function entryFilter(req: Omit<ListEntriesRequest, 'pagination'>): RawBuilder<SqlBool>[] {
  const where: RawBuilder<SqlBool>[] = [];
  if (req.bySpiffeId !== undefined) where.push(sql<SqlBool>`entries.spiffe_id = ${req.bySpiffeId}`);
  if (req.byParentId !== undefined) where.push(sql<SqlBool>`entries.parent_id = ${req.byParentId}`);
  if (req.byHint !== undefined) where.push(sql<SqlBool>`entries.hint = ${req.byHint}`);
  if (req.bySelectors !== undefined) {
    checkMatchMode('bySelectors', req.bySelectors.match);
    checkSelectors('bySelectors.selectors', dedupeSelectors(req.bySelectors.selectors), false);
    const sels = dedupeSelectors(req.bySelectors.selectors);
    const n = sels.length;
    where.push(
      matchCondition(req.bySelectors.match, n, sql`entries.pk`, sql`entries.selector_count`, (h) => {
        if (h === 'any')
          return sql`SELECT es.entry_pk FROM entry_selectors es WHERE ${selectorMatch('es', sels)}`;
        if (h === 'all') {
          return sql`SELECT es.entry_pk FROM entry_selectors es WHERE ${selectorMatch('es', sels)}
            GROUP BY es.entry_pk HAVING COUNT(*) = ${n}`;
        }
        return sql`SELECT es.entry_pk FROM entry_selectors es JOIN entries e2 ON e2.pk = es.entry_pk
          WHERE ${selectorMatch('es', sels)} GROUP BY es.entry_pk, e2.selector_count
          HAVING COUNT(*) = e2.selector_count`;
      }),
    );
  }
  if (req.byFederatesWith !== undefined) {
    checkMatchMode('byFederatesWith', req.byFederatesWith.match);
    const tds = [...new Set(req.byFederatesWith.trustDomains)];
    for (const td of tds) checkKey('byFederatesWith.trustDomains', td, 255);
    const n = tds.length;
    const inList = sql.join(tds.map((td) => sql`${td}`));
    where.push(
      matchCondition(
        req.byFederatesWith.match,
        n,
        sql`entries.pk`,
        sql`entries.federates_with_count`,
        (h) => {
          if (h === 'any')
            return sql`SELECT f.entry_pk FROM entry_federates_with f WHERE f.trust_domain IN (${inList})`;
          if (h === 'all') {
            return sql`SELECT f.entry_pk FROM entry_federates_with f WHERE f.trust_domain IN (${inList})
            GROUP BY f.entry_pk HAVING COUNT(*) = ${n}`;
          }
          return sql`SELECT f.entry_pk FROM entry_federates_with f JOIN entries e2 ON e2.pk = f.entry_pk
          WHERE f.trust_domain IN (${inList}) GROUP BY f.entry_pk, e2.federates_with_count
          HAVING COUNT(*) = e2.federates_with_count`;
        },
      ),
    );
  }
  return where;
}

function nodeFilter(req: Omit<ListAttestedNodesRequest, 'pagination'>): RawBuilder<SqlBool>[] {
  const where: RawBuilder<SqlBool>[] = [];
  if (req.byBanned !== undefined) where.push(sql<SqlBool>`attested_nodes.banned = ${req.byBanned ? 1 : 0}`);
  if (req.byCanReattest !== undefined) {
    where.push(sql<SqlBool>`attested_nodes.can_reattest = ${req.byCanReattest ? 1 : 0}`);
  }
  if (req.byAttestationType !== undefined) {
    where.push(sql<SqlBool>`attested_nodes.attestation_type = ${req.byAttestationType}`);
  }
  if (req.byExpiresBefore !== undefined) {
    checkBefore('byExpiresBefore', req.byExpiresBefore);
    where.push(sql<SqlBool>`attested_nodes.cert_not_after < ${req.byExpiresBefore.getTime()}`);
  }
  if (req.bySelectors !== undefined) {
    checkMatchMode('bySelectors', req.bySelectors.match);
    const sels = dedupeSelectors(req.bySelectors.selectors);
    checkSelectors('bySelectors.selectors', sels, false);
    const n = sels.length;
    const count = sql`(SELECT COUNT(*) FROM node_selectors c WHERE c.spiffe_id = attested_nodes.spiffe_id)`;
    where.push(
      matchCondition(req.bySelectors.match, n, sql`attested_nodes.spiffe_id`, count, (h) => {
        if (h === 'any')
          return sql`SELECT ns.spiffe_id FROM node_selectors ns WHERE ${selectorMatch('ns', sels)}`;
        if (h === 'all') {
          return sql`SELECT ns.spiffe_id FROM node_selectors ns WHERE ${selectorMatch('ns', sels)}
            GROUP BY ns.spiffe_id HAVING COUNT(*) = ${n}`;
        }
        return sql`SELECT ns.spiffe_id FROM node_selectors ns WHERE ${selectorMatch('ns', sels)}
          GROUP BY ns.spiffe_id HAVING COUNT(*) =
            (SELECT COUNT(*) FROM node_selectors c2 WHERE c2.spiffe_id = ns.spiffe_id)`;
      }),
    );
  }
  return where;
}

function and(where: RawBuilder<SqlBool>[]): RawBuilder<SqlBool> {
  return where.length === 0 ? sql<SqlBool>`1 = 1` : sql<SqlBool>`${sql.join(where, sql` AND `)}`;
}

/** Builds the page from `size + 1` rows ordered by key. */
function page<R, T>(rows: R[], size: number | undefined, key: (r: R) => number, map: (r: R) => T): Page<T> {
  if (size === undefined || rows.length <= size) return { items: rows.map(map), nextPageToken: undefined };
  const kept = rows.slice(0, size);
  const last = kept[kept.length - 1] as R;
  return { items: kept.map(map), nextPageToken: encodePageToken(key(last)) };
}

interface PendingEvent {
  readonly kind: ChangeKind;
  readonly action: ChangeAction;
  readonly id: string;
}

/** The SQL implementation of {@link Datastore}. Build it with `openDatastore`. */
export class SqlDatastore implements Datastore {
  readonly engine: DatastoreEngine;
  readonly #db: Db;
  readonly #adapter: EngineAdapter;
  readonly #now: () => number;
  #closed = false;

  /** @internal Use `openDatastore`, which also applies migrations. */
  constructor(db: Kysely<DatabaseSchema>, adapter: EngineAdapter, now: () => number = Date.now) {
    this.#db = db;
    this.#adapter = adapter;
    this.engine = adapter.engine;
    this.#now = now;
  }

  // ---- plumbing ---------------------------------------------------------------------------------------

  /** Runs `fn`, mapping driver errors to DatastoreError (no driver message: it may quote values). */
  async #op<T>(op: string, conflict: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closed)
      throw new DatastoreError('ERR_DATASTORE_FAILED', `datastore: ${op} failed: datastore is closed`);
    try {
      // Writes of this process to one SQLite file are queued (see EngineAdapter.exclusive); reads are not.
      return READ_OP.test(op) ? await fn() : await this.#adapter.exclusive(fn);
    } catch (err) {
      if (err instanceof SpiffeError || err instanceof TypeError || err instanceof RangeError) throw err;
      if (this.#adapter.isUniqueViolation(err)) {
        throw new DatastoreError('ERR_DATASTORE_CONFLICT', `datastore: ${conflict}`);
      }
      throw new DatastoreError(
        'ERR_DATASTORE_FAILED',
        `datastore: ${op} failed on ${this.#adapter.target} (${driverErrorCode(err)})`,
      );
    }
  }

  /** A write transaction on one connection. */
  async #tx<T>(fn: (conn: Db) => Promise<T>): Promise<T> {
    return this.#db.connection().execute(async (conn) => {
      await sql.raw(this.#adapter.beginWrite).execute(conn);
      try {
        const r = await fn(conn);
        await sql.raw('COMMIT').execute(conn);
        return r;
      } catch (err) {
        await sql
          .raw('ROLLBACK')
          .execute(conn)
          .catch(() => {});
        throw err;
      }
    });
  }

  /** Takes the global write lock (the change_sequence row); first statement of every event-writing transaction. */
  async #lockWrites(conn: Db): Promise<void> {
    if (this.#adapter.rowLocks) {
      await conn.selectFrom('change_sequence').select('value').where('id', '=', 1).forUpdate().execute();
    }
  }

  /** Allocates sequence numbers for `events` and records them. */
  async #emit(conn: Db, events: readonly PendingEvent[]): Promise<void> {
    if (events.length === 0) return;
    await conn
      .updateTable('change_sequence')
      .set({ value: sql<number>`value + ${events.length}` })
      .where('id', '=', 1)
      .execute();
    const row = await conn
      .selectFrom('change_sequence')
      .select('value')
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    const first = num(row.value) - events.length + 1;
    const at = this.#now();
    for (const [ci, part] of chunks(events, CHUNK).entries()) {
      await conn
        .insertInto('events')
        .values(
          part.map((e, i) => ({
            seq: first + ci * CHUNK + i,
            kind: e.kind,
            action: e.action,
            object_id: e.id,
            at,
          })),
        )
        .execute();
    }
  }

  // The two helpers below serve the tables with one row per trust domain. Kysely cannot type a query over a
  // generic table name, so each writes its query over the union of those tables and narrows the rows back to
  // `T`'s, which is what the query returns since it reads `table`.

  /** Reads the row of `table` for `trustDomain`. */
  async #fetchByTrustDomain<T extends TrustDomainTable, R>(
    op: string,
    table: T,
    trustDomain: string,
    map: (row: Selectable<DatabaseSchema[T]>) => R,
  ): Promise<R | undefined> {
    return this.#op(op, 'conflict', async () => {
      const r = await this.#db
        .selectFrom(table as TrustDomainTable)
        .selectAll()
        .where('trust_domain', '=', trustDomain)
        .executeTakeFirst();
      return r === undefined ? undefined : map(r as Selectable<DatabaseSchema[T]>);
    });
  }

  /** Lists the rows of `table` in insertion (pk) order, a page at a time when `req` asks for pagination. */
  async #listPaged<T extends TrustDomainTable, R>(
    op: string,
    table: T,
    req: ListRequest,
    map: (row: Selectable<DatabaseSchema[T]>) => R,
  ): Promise<Page<R>> {
    const p = checkPagination(req.pagination);
    return this.#op(op, 'conflict', async () => {
      let q = this.#db
        .selectFrom(table as TrustDomainTable)
        .selectAll()
        .orderBy('pk');
      if (p !== undefined) q = q.where('pk', '>', p.after).limit(p.size + 1);
      return page(
        await q.execute(),
        p?.size,
        (r) => num(r.pk),
        (r) => map(r as Selectable<DatabaseSchema[T]>),
      );
    });
  }

  /** Counts the rows of `table` that meet every condition of `where`. */
  async #count(
    op: string,
    table: 'entries' | 'attested_nodes',
    where: RawBuilder<SqlBool>[],
  ): Promise<number> {
    return this.#op(op, 'conflict', async () => {
      const r = await this.#db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where(and(where))
        .executeTakeFirstOrThrow();
      return num(r.n);
    });
  }

  async #checkFederatedBundles(conn: Db, tds: Iterable<string>): Promise<void> {
    const wanted = [...new Set(tds)];
    for (const part of chunks(wanted, CHUNK)) {
      const found = await conn
        .selectFrom('bundles')
        .select('trust_domain')
        .where('trust_domain', 'in', part)
        .execute();
      const have = new Set(found.map((r) => r.trust_domain));
      const missing = part.find((td) => !have.has(td));
      if (missing !== undefined) {
        throw new DatastoreError(
          'ERR_DATASTORE_NOT_FOUND',
          `datastore: no bundle for federated trust domain ${quote(missing)}`,
        );
      }
    }
  }

  // ---- entries ----------------------------------------------------------------------------------------

  async createEntry(entry: NewRegistrationEntry): Promise<RegistrationEntry> {
    return this.createEntries([entry]).then((r) => r[0] as RegistrationEntry);
  }

  async createEntries(entries: readonly NewRegistrationEntry[]): Promise<RegistrationEntry[]> {
    if (!Array.isArray(entries as unknown)) throw new TypeError('datastore: entries must be an array');
    for (const e of entries) checkEntry(e);
    return this.#op(
      'create entries',
      'an entry with the same id, or the same spiffeId, parentId and selectors, already exists',
      async () => {
        if (entries.length === 0) return [];
        const createdAt = new Date(this.#now());
        const records: RegistrationEntry[] = entries.map((e) => ({
          id: e.id ?? randomUUID(),
          spiffeId: e.spiffeId,
          parentId: e.parentId,
          selectors: e.selectors.map((s) => ({ type: s.type, value: s.value })),
          x509SvidTtl: e.x509SvidTtl,
          jwtSvidTtl: e.jwtSvidTtl,
          dnsNames: [...e.dnsNames],
          federatesWith: [...e.federatesWith],
          admin: e.admin,
          downstream: e.downstream,
          storeSvid: e.storeSvid,
          hint: e.hint,
          expiresAt: e.expiresAt,
          revision: 0,
          createdAt,
        }));
        return this.#tx(async (conn) => {
          await this.#lockWrites(conn);
          await this.#checkFederatedBundles(
            conn,
            records.flatMap((r) => r.federatesWith),
          );
          for (const part of chunks(records, CHUNK)) {
            await conn.insertInto('entries').values(part.map(entryColumns)).execute();
            const pks = await conn
              .selectFrom('entries')
              .select(['pk', 'id'])
              .where(
                'id',
                'in',
                part.map((r) => r.id),
              )
              .execute();
            const pkById = new Map(pks.map((r) => [r.id, num(r.pk)]));
            const sels = part.flatMap((r) =>
              r.selectors.map((s) => ({
                entry_pk: pkById.get(r.id) as number,
                type: s.type,
                value: s.value,
              })),
            );
            for (const p of chunks(sels, CHUNK)) await conn.insertInto('entry_selectors').values(p).execute();
            const feds = part.flatMap((r) =>
              r.federatesWith.map((td) => ({ entry_pk: pkById.get(r.id) as number, trust_domain: td })),
            );
            for (const p of chunks(feds, CHUNK))
              await conn.insertInto('entry_federates_with').values(p).execute();
          }
          await this.#emit(
            conn,
            records.map((r) => ({ kind: 'entry', action: 'created', id: r.id })),
          );
          return records;
        });
      },
    );
  }

  async fetchEntry(id: string): Promise<RegistrationEntry | undefined> {
    return this.#op('fetch entry', 'conflict', async () => {
      const r = await this.#db.selectFrom('entries').selectAll().where('id', '=', id).executeTakeFirst();
      return r === undefined ? undefined : toEntry(r);
    });
  }

  async listEntries(req: ListEntriesRequest = {}): Promise<Page<RegistrationEntry>> {
    const p = checkPagination(req.pagination);
    const where = entryFilter(req);
    return this.#op('list entries', 'conflict', async () => {
      let q = this.#db.selectFrom('entries').selectAll().where(and(where)).orderBy('pk');
      if (p !== undefined) q = q.where('pk', '>', p.after).limit(p.size + 1);
      const rows = await q.execute();
      return page(rows, p?.size, (r) => num(r.pk), toEntry);
    });
  }

  async countEntries(req: Omit<ListEntriesRequest, 'pagination'> = {}): Promise<number> {
    return this.#count('count entries', 'entries', entryFilter(req));
  }

  async updateEntry(entry: RegistrationEntry, mask: EntryMask): Promise<RegistrationEntry> {
    if (typeof entry !== 'object' || entry === null)
      throw new TypeError('datastore: entry must be an object');
    if (typeof mask !== 'object' || mask === null) throw new TypeError('datastore: mask must be an object');
    checkKey('entry id', entry.id, 255);
    return this.#op(
      'update entry',
      'an entry with the same spiffeId, parentId and selectors already exists',
      async () =>
        this.#tx(async (conn) => {
          await this.#lockWrites(conn);
          const row = await conn
            .selectFrom('entries')
            .selectAll()
            .where('id', '=', entry.id)
            .executeTakeFirst();
          if (row === undefined) notFound(`entry ${quote(entry.id)}`);
          const cur = toEntry(row);
          const pick = <K extends keyof EntryMask & keyof RegistrationEntry>(k: K): RegistrationEntry[K] =>
            mask[k] === true ? entry[k] : cur[k];
          const next: RegistrationEntry = {
            id: cur.id,
            spiffeId: pick('spiffeId'),
            parentId: pick('parentId'),
            selectors: pick('selectors'),
            x509SvidTtl: pick('x509SvidTtl'),
            jwtSvidTtl: pick('jwtSvidTtl'),
            dnsNames: pick('dnsNames'),
            federatesWith: pick('federatesWith'),
            admin: pick('admin'),
            downstream: pick('downstream'),
            storeSvid: pick('storeSvid'),
            hint: pick('hint'),
            expiresAt: pick('expiresAt'),
            revision: cur.revision + 1,
            createdAt: cur.createdAt,
          };
          checkEntry(next);
          const pk = num(row.pk);
          if (mask.federatesWith === true) await this.#checkFederatedBundles(conn, next.federatesWith);
          const { id: _id, created_at: _c, ...cols } = entryColumns(next);
          await conn.updateTable('entries').set(cols).where('pk', '=', pk).execute();
          if (mask.selectors === true) {
            await conn.deleteFrom('entry_selectors').where('entry_pk', '=', pk).execute();
            await conn
              .insertInto('entry_selectors')
              .values(next.selectors.map((s) => ({ entry_pk: pk, type: s.type, value: s.value })))
              .execute();
          }
          if (mask.federatesWith === true) await this.#replaceFederatesWith(conn, pk, next.federatesWith);
          await this.#emit(conn, [{ kind: 'entry', action: 'updated', id: next.id }]);
          return next;
        }),
    );
  }

  async #replaceFederatesWith(conn: Db, pk: number, tds: readonly string[]): Promise<void> {
    await conn.deleteFrom('entry_federates_with').where('entry_pk', '=', pk).execute();
    if (tds.length > 0) {
      await conn
        .insertInto('entry_federates_with')
        .values(tds.map((td) => ({ entry_pk: pk, trust_domain: td })))
        .execute();
    }
  }

  async deleteEntry(id: string): Promise<RegistrationEntry> {
    return this.#op('delete entry', 'conflict', async () =>
      this.#tx(async (conn) => {
        await this.#lockWrites(conn);
        const row = await conn.selectFrom('entries').selectAll().where('id', '=', id).executeTakeFirst();
        if (row === undefined) notFound(`entry ${quote(id)}`);
        await this.#deleteEntryRows(conn, [num(row.pk)]);
        await this.#emit(conn, [{ kind: 'entry', action: 'deleted', id }]);
        return toEntry(row);
      }),
    );
  }

  async #deleteEntryRows(conn: Db, pks: readonly number[]): Promise<void> {
    // Explicit child deletes: do not rely on the engine's ON DELETE CASCADE being enabled.
    for (const part of chunks(pks, CHUNK)) {
      await conn.deleteFrom('entry_selectors').where('entry_pk', 'in', part).execute();
      await conn.deleteFrom('entry_federates_with').where('entry_pk', 'in', part).execute();
      await conn.deleteFrom('entries').where('pk', 'in', part).execute();
    }
  }

  async pruneEntries(before: Date): Promise<number> {
    checkBefore('before', before);
    return this.#op('prune entries', 'conflict', async () =>
      this.#tx(async (conn) => {
        await this.#lockWrites(conn);
        const rows = await conn
          .selectFrom('entries')
          .select(['pk', 'id'])
          .where('expires_at', 'is not', null)
          .where('expires_at', '<', before.getTime())
          .execute();
        await this.#deleteEntryRows(
          conn,
          rows.map((r) => num(r.pk)),
        );
        await this.#emit(
          conn,
          rows.map((r) => ({ kind: 'entry', action: 'deleted', id: r.id })),
        );
        return rows.length;
      }),
    );
  }

  async *listAllEntriesForIndex(batchSize = DEFAULT_INDEX_BATCH): AsyncIterable<RegistrationEntry[]> {
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) {
      throw new RangeError(
        `datastore: batchSize must be an integer from 1 to 100000, got ${quote(batchSize)}`,
      );
    }
    let after = 0;
    for (;;) {
      const rows = await this.#op('list entries for index', 'conflict', () =>
        this.#db
          .selectFrom('entries')
          .selectAll()
          .where('pk', '>', after)
          .orderBy('pk')
          .limit(batchSize)
          .execute(),
      );
      if (rows.length === 0) return;
      after = num((rows[rows.length - 1] as EntryRow).pk);
      yield rows.map(toEntry);
      if (rows.length < batchSize) return;
    }
  }

  // ---- attested nodes ---------------------------------------------------------------------------------

  async #selectorsOf(conn: Db, spiffeIds: readonly string[]): Promise<Map<string, Selector[]>> {
    const out = new Map<string, Selector[]>();
    for (const part of chunks(spiffeIds, CHUNK)) {
      const rows = await conn
        .selectFrom('node_selectors')
        .select(['spiffe_id', 'type', 'value'])
        .where('spiffe_id', 'in', part)
        .execute();
      for (const r of rows) {
        const list = out.get(r.spiffe_id) ?? [];
        list.push({ type: r.type, value: r.value });
        out.set(r.spiffe_id, list);
      }
    }
    for (const list of out.values()) list.sort(compareSelectors);
    return out;
  }

  async #replaceNodeSelectors(conn: Db, spiffeId: string, selectors: readonly Selector[]): Promise<void> {
    await conn.deleteFrom('node_selectors').where('spiffe_id', '=', spiffeId).execute();
    for (const part of chunks(selectors, CHUNK)) {
      await conn
        .insertInto('node_selectors')
        .values(part.map((s) => ({ spiffe_id: spiffeId, type: s.type, value: s.value })))
        .execute();
    }
  }

  async createAttestedNode(node: NewAttestedNode): Promise<AttestedNode> {
    checkNode(node);
    if (node.selectors !== undefined) checkSelectors('node selectors', node.selectors, false);
    return this.#op(
      'create attested node',
      `attested node ${quote(node.spiffeId)} already exists`,
      async () =>
        this.#tx(async (conn) => {
          await this.#lockWrites(conn);
          await conn.insertInto('attested_nodes').values(nodeColumns(node)).execute();
          if (node.selectors !== undefined)
            await this.#replaceNodeSelectors(conn, node.spiffeId, node.selectors);
          const sels = (await this.#selectorsOf(conn, [node.spiffeId])).get(node.spiffeId) ?? [];
          await this.#emit(conn, [{ kind: 'node', action: 'created', id: node.spiffeId }]);
          const row = await conn
            .selectFrom('attested_nodes')
            .selectAll()
            .where('spiffe_id', '=', node.spiffeId)
            .executeTakeFirstOrThrow();
          return toNode(row, sels);
        }),
    );
  }

  async fetchAttestedNode(spiffeId: string): Promise<AttestedNode | undefined> {
    return this.#op('fetch attested node', 'conflict', async () => {
      const row = await this.#db
        .selectFrom('attested_nodes')
        .selectAll()
        .where('spiffe_id', '=', spiffeId)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      return toNode(row, (await this.#selectorsOf(this.#db, [spiffeId])).get(spiffeId) ?? []);
    });
  }

  async listAttestedNodes(req: ListAttestedNodesRequest = {}): Promise<Page<AttestedNode>> {
    const p = checkPagination(req.pagination);
    const where = nodeFilter(req);
    return this.#op('list attested nodes', 'conflict', async () => {
      let q = this.#db.selectFrom('attested_nodes').selectAll().where(and(where)).orderBy('pk');
      if (p !== undefined) q = q.where('pk', '>', p.after).limit(p.size + 1);
      const rows = await q.execute();
      const sels = await this.#selectorsOf(
        this.#db,
        rows.map((r) => r.spiffe_id),
      );
      return page(
        rows,
        p?.size,
        (r) => num(r.pk),
        (r) => toNode(r, sels.get(r.spiffe_id) ?? []),
      );
    });
  }

  async countAttestedNodes(req: Omit<ListAttestedNodesRequest, 'pagination'> = {}): Promise<number> {
    return this.#count('count attested nodes', 'attested_nodes', nodeFilter(req));
  }

  async updateAttestedNode(node: AttestedNode, mask: AttestedNodeMask): Promise<AttestedNode> {
    if (typeof node !== 'object' || node === null) throw new TypeError('datastore: node must be an object');
    if (typeof mask !== 'object' || mask === null) throw new TypeError('datastore: mask must be an object');
    checkKey('node spiffeId', node.spiffeId, 2048);
    return this.#op('update attested node', 'conflict', async () =>
      this.#tx(async (conn) => {
        await this.#lockWrites(conn);
        const row = await conn
          .selectFrom('attested_nodes')
          .selectAll()
          .where('spiffe_id', '=', node.spiffeId)
          .executeTakeFirst();
        if (row === undefined) notFound(`attested node ${quote(node.spiffeId)}`);
        const sels = (await this.#selectorsOf(conn, [node.spiffeId])).get(node.spiffeId) ?? [];
        const cur = toNode(row, sels);
        const pick = <K extends keyof AttestedNodeMask & keyof AttestedNode>(k: K): AttestedNode[K] =>
          mask[k] === true ? node[k] : cur[k];
        const next: AttestedNode = {
          spiffeId: cur.spiffeId,
          attestationType: pick('attestationType'),
          certSerial: pick('certSerial'),
          certNotAfter: pick('certNotAfter'),
          newCertSerial: pick('newCertSerial'),
          newCertNotAfter: pick('newCertNotAfter'),
          banned: pick('banned'),
          selectors: sels,
          canReattest: pick('canReattest'),
        };
        checkNode(next);
        await conn.updateTable('attested_nodes').set(nodeColumns(next)).where('pk', '=', row.pk).execute();
        await this.#emit(conn, [{ kind: 'node', action: 'updated', id: next.spiffeId }]);
        return next;
      }),
    );
  }

  async deleteAttestedNode(spiffeId: string): Promise<AttestedNode> {
    return this.#op('delete attested node', 'conflict', async () =>
      this.#tx(async (conn) => {
        await this.#lockWrites(conn);
        const row = await conn
          .selectFrom('attested_nodes')
          .selectAll()
          .where('spiffe_id', '=', spiffeId)
          .executeTakeFirst();
        if (row === undefined) notFound(`attested node ${quote(spiffeId)}`);
        const sels = (await this.#selectorsOf(conn, [spiffeId])).get(spiffeId) ?? [];
        await conn.deleteFrom('node_selectors').where('spiffe_id', '=', spiffeId).execute();
        await conn.deleteFrom('attested_nodes').where('pk', '=', row.pk).execute();
        await this.#emit(conn, [{ kind: 'node', action: 'deleted', id: spiffeId }]);
        return toNode(row, sels);
      }),
    );
  }

  async pruneAttestedNodes(before: Date): Promise<number> {
    checkBefore('before', before);
    return this.#op('prune attested nodes', 'conflict', async () =>
      this.#tx(async (conn) => {
        await this.#lockWrites(conn);
        const rows = await conn
          .selectFrom('attested_nodes')
          .select(['pk', 'spiffe_id'])
          .where('cert_not_after', '<', before.getTime())
          .where('banned', '=', 0)
          .execute();
        for (const part of chunks(rows, CHUNK)) {
          await conn
            .deleteFrom('node_selectors')
            .where(
              'spiffe_id',
              'in',
              part.map((r) => r.spiffe_id),
            )
            .execute();
          await conn
            .deleteFrom('attested_nodes')
            .where(
              'pk',
              'in',
              part.map((r) => r.pk),
            )
            .execute();
        }
        await this.#emit(
          conn,
          rows.map((r) => ({ kind: 'node', action: 'deleted', id: r.spiffe_id })),
        );
        return rows.length;
      }),
    );
  }

  async setNodeSelectors(spiffeId: string, selectors: readonly Selector[]): Promise<void> {
    checkKey('node spiffeId', spiffeId, 2048);
    checkSelectors('node selectors', selectors, false);
    return this.#op('set node selectors', 'conflict', async () =>
      this.#tx(async (conn) => {
        await this.#lockWrites(conn);
        await this.#replaceNodeSelectors(conn, spiffeId, selectors);
        await this.#emit(conn, [{ kind: 'node', action: 'updated', id: spiffeId }]);
      }),
    );
  }

  async getNodeSelectors(spiffeId: string): Promise<Selector[]> {
    return this.#op(
      'get node selectors',
      'conflict',
      async () => (await this.#selectorsOf(this.#db, [spiffeId])).get(spiffeId) ?? [],
    );
  }

  // ---- join tokens ------------------------------------------------------------------------------------

  async createJoinToken(token: JoinToken): Promise<void> {
    if (typeof token !== 'object' || token === null)
      throw new TypeError('datastore: token must be an object');
    checkJoinToken(token.token, token.expiresAt);
    return this.#op('create join token', 'join token already exists', async () => {
      await this.#db
        .insertInto('join_tokens')
        .values({ token_hash: tokenHash(token.token), expires_at: token.expiresAt.getTime() })
        .execute();
    });
  }

  async fetchJoinToken(token: string): Promise<JoinToken | undefined> {
    checkJoinToken(token);
    return this.#op('fetch join token', 'conflict', async () => {
      const r = await this.#db
        .selectFrom('join_tokens')
        .select('expires_at')
        .where('token_hash', '=', tokenHash(token))
        .executeTakeFirst();
      return r === undefined ? undefined : { token, expiresAt: new Date(num(r.expires_at)) };
    });
  }

  async consumeJoinToken(token: string, now: Date): Promise<JoinToken | undefined> {
    checkJoinToken(token);
    checkBefore('now', now);
    return this.#op('consume join token', 'conflict', async () => {
      // One statement: the row lock (PostgreSQL, MariaDB) or the database write lock (SQLite) lets exactly one
      // concurrent DELETE see the row; every other one deletes nothing and returns no row.
      // Raw SQL: Kysely's MySQL adapter drops RETURNING rows, which MariaDB (10.5+) does support.
      const res = await sql<{ expires_at: number | string }>`
        DELETE FROM join_tokens WHERE token_hash = ${tokenHash(token)} RETURNING expires_at`.execute(
        this.#db,
      );
      const r = res.rows[0];
      if (r === undefined) return undefined;
      const expiresAt = new Date(num(r.expires_at));
      return expiresAt.getTime() > now.getTime() ? { token, expiresAt } : undefined;
    });
  }

  async deleteJoinToken(token: string): Promise<void> {
    checkJoinToken(token);
    return this.#op('delete join token', 'conflict', async () => {
      const r = await this.#db
        .deleteFrom('join_tokens')
        .where('token_hash', '=', tokenHash(token))
        .executeTakeFirst();
      if (r.numDeletedRows === 0n) notFound('join token');
    });
  }

  async pruneJoinTokens(before: Date): Promise<number> {
    checkBefore('before', before);
    return this.#op('prune join tokens', 'conflict', async () => {
      const r = await this.#db
        .deleteFrom('join_tokens')
        .where('expires_at', '<', before.getTime())
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    });
  }

  // ---- bundles ----------------------------------------------------------------------------------------

  #bundleColumns(b: Bundle) {
    return { trust_domain: b.trustDomain, data: Buffer.from(b.data), sequence: b.sequence };
  }

  async createBundle(bundle: Bundle): Promise<Bundle> {
    checkBundle(bundle);
    return this.#op('create bundle', `bundle for ${quote(bundle.trustDomain)} already exists`, async () => {
      await this.#db.insertInto('bundles').values(this.#bundleColumns(bundle)).execute();
      return {
        trustDomain: bundle.trustDomain,
        data: new Uint8Array(bundle.data),
        sequence: bundle.sequence,
      };
    });
  }

  async setBundle(bundle: Bundle): Promise<Bundle> {
    checkBundle(bundle);
    return this.#op('set bundle', 'conflict', async () => {
      const cols = this.#bundleColumns(bundle);
      const q = this.#db.insertInto('bundles').values(cols);
      if (this.engine === 'mysql') {
        await q.onDuplicateKeyUpdate({ data: cols.data, sequence: cols.sequence }).execute();
      } else {
        await q
          .onConflict((oc) =>
            oc.column('trust_domain').doUpdateSet({ data: cols.data, sequence: cols.sequence }),
          )
          .execute();
      }
      return {
        trustDomain: bundle.trustDomain,
        data: new Uint8Array(bundle.data),
        sequence: bundle.sequence,
      };
    });
  }

  async updateBundle(bundle: Bundle): Promise<Bundle> {
    checkBundle(bundle);
    return this.#op('update bundle', 'conflict', async () =>
      this.#tx(async (conn) => {
        const cur = await conn
          .selectFrom('bundles')
          .select('pk')
          .where('trust_domain', '=', bundle.trustDomain)
          .executeTakeFirst();
        if (cur === undefined) notFound(`bundle for ${quote(bundle.trustDomain)}`);
        const { data, sequence } = this.#bundleColumns(bundle);
        await conn.updateTable('bundles').set({ data, sequence }).where('pk', '=', cur.pk).execute();
        return {
          trustDomain: bundle.trustDomain,
          data: new Uint8Array(bundle.data),
          sequence: bundle.sequence,
        };
      }),
    );
  }

  async appendBundle(trustDomain: string, merge: (current: Bundle | undefined) => Bundle): Promise<Bundle> {
    checkKey('bundle trustDomain', trustDomain, 255);
    if (typeof merge !== 'function') throw new TypeError('datastore: merge must be a function');
    return this.#op('append bundle', 'conflict', async () =>
      this.#tx(async (conn) => {
        // The global write lock: an absent row cannot be locked, and two appends must not both insert.
        await this.#lockWrites(conn);
        const row = await conn
          .selectFrom('bundles')
          .selectAll()
          .where('trust_domain', '=', trustDomain)
          .executeTakeFirst();
        const next = merge(row === undefined ? undefined : toBundle(row));
        checkBundle(next);
        if (next.trustDomain !== trustDomain) {
          invalid(`appended bundle is for ${quote(next.trustDomain)}, not ${quote(trustDomain)}`);
        }
        const cols = this.#bundleColumns(next);
        if (row === undefined) await conn.insertInto('bundles').values(cols).execute();
        else {
          await conn
            .updateTable('bundles')
            .set({ data: cols.data, sequence: cols.sequence })
            .where('pk', '=', row.pk)
            .execute();
        }
        return { trustDomain, data: new Uint8Array(next.data), sequence: next.sequence };
      }),
    );
  }

  async fetchBundle(trustDomain: string): Promise<Bundle | undefined> {
    return this.#fetchByTrustDomain('fetch bundle', 'bundles', trustDomain, toBundle);
  }

  async listBundles(req: ListRequest = {}): Promise<Page<Bundle>> {
    return this.#listPaged('list bundles', 'bundles', req, toBundle);
  }

  async countBundles(): Promise<number> {
    return this.#op('count bundles', 'conflict', async () => {
      const r = await this.#db
        .selectFrom('bundles')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .executeTakeFirstOrThrow();
      return num(r.n);
    });
  }

  async deleteBundle(trustDomain: string, mode: DeleteBundleMode = 'restrict'): Promise<void> {
    if (mode !== 'restrict' && mode !== 'dissociate' && mode !== 'delete') {
      throw new RangeError(
        `datastore: delete bundle mode must be restrict, dissociate or delete, got ${quote(mode)}`,
      );
    }
    return this.#op('delete bundle', 'conflict', async () =>
      this.#tx(async (conn) => {
        await this.#lockWrites(conn);
        const b = await conn
          .selectFrom('bundles')
          .select('pk')
          .where('trust_domain', '=', trustDomain)
          .executeTakeFirst();
        if (b === undefined) notFound(`bundle for ${quote(trustDomain)}`);
        const rows = await conn
          .selectFrom('entries')
          .selectAll()
          .where('pk', 'in', (eb) =>
            eb.selectFrom('entry_federates_with').select('entry_pk').where('trust_domain', '=', trustDomain),
          )
          .orderBy('pk')
          .execute();
        if (rows.length > 0 && mode === 'restrict') {
          throw new DatastoreError(
            'ERR_DATASTORE_CONFLICT',
            `datastore: cannot delete bundle for ${quote(trustDomain)}: ${rows.length} entries federate with it`,
          );
        }
        if (mode === 'delete') {
          await this.#deleteEntryRows(
            conn,
            rows.map((r) => num(r.pk)),
          );
          await this.#emit(
            conn,
            rows.map((r) => ({ kind: 'entry', action: 'deleted', id: r.id })),
          );
        } else if (rows.length > 0) {
          for (const r of rows) {
            const e = toEntry(r);
            const next = { ...e, federatesWith: e.federatesWith.filter((td) => td !== trustDomain) };
            await conn
              .updateTable('entries')
              .set({
                federates_with: JSON.stringify(next.federatesWith),
                federates_with_count: next.federatesWith.length,
                revision: e.revision + 1,
              })
              .where('pk', '=', r.pk)
              .execute();
          }
          await conn.deleteFrom('entry_federates_with').where('trust_domain', '=', trustDomain).execute();
          await this.#emit(
            conn,
            rows.map((r) => ({ kind: 'entry', action: 'updated', id: r.id })),
          );
        }
        await conn.deleteFrom('bundles').where('pk', '=', b.pk).execute();
      }),
    );
  }

  // ---- federation relationships -----------------------------------------------------------------------

  #relColumns(r: FederationRelationship) {
    return {
      trust_domain: r.trustDomain,
      bundle_endpoint_url: r.bundleEndpointUrl,
      profile: r.profile,
      endpoint_spiffe_id: r.endpointSpiffeId ?? null,
    };
  }

  async createFederationRelationship(rel: FederationRelationship): Promise<FederationRelationship> {
    checkFederationRelationship(rel);
    return this.#op(
      'create federation relationship',
      `federation relationship with ${quote(rel.trustDomain)} already exists`,
      async () => {
        await this.#db.insertInto('federation_relationships').values(this.#relColumns(rel)).execute();
        return toRelationship({
          pk: 0,
          ...this.#relColumns(rel),
        } as Selectable<FederationRelationshipsTable>);
      },
    );
  }

  async fetchFederationRelationship(trustDomain: string): Promise<FederationRelationship | undefined> {
    return this.#fetchByTrustDomain(
      'fetch federation relationship',
      'federation_relationships',
      trustDomain,
      toRelationship,
    );
  }

  async listFederationRelationships(req: ListRequest = {}): Promise<Page<FederationRelationship>> {
    return this.#listPaged('list federation relationships', 'federation_relationships', req, toRelationship);
  }

  async updateFederationRelationship(
    rel: FederationRelationship,
    mask: FederationRelationshipMask,
  ): Promise<FederationRelationship> {
    if (typeof rel !== 'object' || rel === null)
      throw new TypeError('datastore: relationship must be an object');
    if (typeof mask !== 'object' || mask === null) throw new TypeError('datastore: mask must be an object');
    return this.#op('update federation relationship', 'conflict', async () =>
      this.#tx(async (conn) => {
        const row = await conn
          .selectFrom('federation_relationships')
          .selectAll()
          .where('trust_domain', '=', rel.trustDomain)
          .executeTakeFirst();
        if (row === undefined) notFound(`federation relationship with ${quote(rel.trustDomain)}`);
        const cur = toRelationship(row);
        const next: FederationRelationship = {
          trustDomain: cur.trustDomain,
          bundleEndpointUrl: mask.bundleEndpointUrl === true ? rel.bundleEndpointUrl : cur.bundleEndpointUrl,
          profile: mask.profile === true ? rel.profile : cur.profile,
          endpointSpiffeId: mask.endpointSpiffeId === true ? rel.endpointSpiffeId : cur.endpointSpiffeId,
        };
        checkFederationRelationship(next);
        const { trust_domain: _td, ...cols } = this.#relColumns(next);
        await conn.updateTable('federation_relationships').set(cols).where('pk', '=', row.pk).execute();
        return next;
      }),
    );
  }

  async deleteFederationRelationship(trustDomain: string): Promise<void> {
    return this.#op('delete federation relationship', 'conflict', async () => {
      const r = await this.#db
        .deleteFrom('federation_relationships')
        .where('trust_domain', '=', trustDomain)
        .executeTakeFirst();
      if (r.numDeletedRows === 0n) notFound(`federation relationship with ${quote(trustDomain)}`);
    });
  }

  // ---- CA journals ------------------------------------------------------------------------------------

  async createCaJournal(journal: Omit<CaJournal, 'id'>): Promise<CaJournal> {
    checkCaJournal(journal);
    return this.#op('create ca journal', 'conflict', async () => {
      const cols = {
        active_x509_authority_id: journal.activeX509AuthorityId,
        active_jwt_authority_id: journal.activeJwtAuthorityId,
        entries: journal.entries,
        expires_at: journal.expiresAt.getTime(),
      };
      let id: number;
      if (this.engine === 'mysql') {
        const r = await this.#db.insertInto('ca_journals').values(cols).executeTakeFirstOrThrow();
        id = Number(r.insertId);
      } else {
        const r = await this.#db
          .insertInto('ca_journals')
          .values(cols)
          .returning('id')
          .executeTakeFirstOrThrow();
        id = num(r.id);
      }
      return { ...journal, id, expiresAt: new Date(journal.expiresAt.getTime()) };
    });
  }

  async updateCaJournal(journal: CaJournal): Promise<CaJournal> {
    checkCaJournal(journal);
    if (!Number.isSafeInteger(journal.id) || journal.id < 1)
      invalid(`ca journal id ${quote(journal.id)} is invalid`);
    return this.#op('update ca journal', 'conflict', async () =>
      this.#tx(async (conn) => {
        const cur = await conn
          .selectFrom('ca_journals')
          .select('id')
          .where('id', '=', journal.id)
          .executeTakeFirst();
        if (cur === undefined) notFound(`ca journal ${journal.id}`);
        await conn
          .updateTable('ca_journals')
          .set({
            active_x509_authority_id: journal.activeX509AuthorityId,
            active_jwt_authority_id: journal.activeJwtAuthorityId,
            entries: journal.entries,
            expires_at: journal.expiresAt.getTime(),
          })
          .where('id', '=', journal.id)
          .execute();
        return { ...journal, expiresAt: new Date(journal.expiresAt.getTime()) };
      }),
    );
  }

  async fetchCaJournal(id: number): Promise<CaJournal | undefined> {
    return this.#op('fetch ca journal', 'conflict', async () => {
      const r = await this.#db.selectFrom('ca_journals').selectAll().where('id', '=', id).executeTakeFirst();
      return r === undefined ? undefined : toJournal(r);
    });
  }

  async fetchCaJournalByX509AuthorityId(authorityId: string): Promise<CaJournal | undefined> {
    return this.#op('fetch ca journal', 'conflict', async () => {
      const r = await this.#db
        .selectFrom('ca_journals')
        .selectAll()
        .where('active_x509_authority_id', '=', authorityId)
        .orderBy('id', 'desc')
        .limit(1)
        .executeTakeFirst();
      return r === undefined ? undefined : toJournal(r);
    });
  }

  async listCaJournals(req: ListRequest = {}): Promise<Page<CaJournal>> {
    const p = checkPagination(req.pagination);
    return this.#op('list ca journals', 'conflict', async () => {
      let q = this.#db.selectFrom('ca_journals').selectAll().orderBy('id');
      if (p !== undefined) q = q.where('id', '>', p.after).limit(p.size + 1);
      return page(await q.execute(), p?.size, (r) => num(r.id), toJournal);
    });
  }

  async pruneCaJournals(before: Date): Promise<number> {
    checkBefore('before', before);
    return this.#op('prune ca journals', 'conflict', async () => {
      const r = await this.#db
        .deleteFrom('ca_journals')
        .where('expires_at', '<', before.getTime())
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    });
  }

  // ---- change events ----------------------------------------------------------------------------------

  async currentSequence(): Promise<number> {
    return this.#op('read change sequence', 'conflict', async () => {
      const r = await this.#db
        .selectFrom('change_sequence')
        .select('value')
        .where('id', '=', 1)
        .executeTakeFirstOrThrow();
      return num(r.value);
    });
  }

  async listEventsSince(sequence: number, limit = 1000): Promise<ChangeEvent[]> {
    if (!Number.isSafeInteger(sequence) || sequence < 0) {
      throw new RangeError(`datastore: sequence must be a non-negative integer, got ${quote(sequence)}`);
    }
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
      throw new RangeError(`datastore: limit must be an integer from 1 to 10000, got ${quote(limit)}`);
    }
    return this.#op('list events', 'conflict', async () => {
      const rows = await this.#db
        .selectFrom('events')
        .selectAll()
        .where('seq', '>', sequence)
        .orderBy('seq')
        .limit(limit)
        .execute();
      return rows.map((r) => ({
        sequence: num(r.seq),
        kind: r.kind as ChangeKind,
        action: r.action as ChangeAction,
        id: r.object_id,
        at: new Date(num(r.at)),
      }));
    });
  }

  async pruneEvents(before: Date): Promise<number> {
    checkBefore('before', before);
    return this.#op('prune events', 'conflict', async () => {
      const r = await this.#db.deleteFrom('events').where('at', '<', before.getTime()).executeTakeFirst();
      return Number(r.numDeletedRows);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#db.destroy();
  }
}

/** Typed helper for callers that page through everything (tests, tools). */
export async function collectAll<T>(
  list: (p: Pagination) => Promise<Page<T>>,
  pageSize = 1000,
): Promise<T[]> {
  const out: T[] = [];
  let token: string | undefined;
  do {
    const p = await list({ token, pageSize });
    out.push(...p.items);
    token = p.nextPageToken;
  } while (token !== undefined);
  return out;
}
