/**
 * The Tessera Sync service (`tessera.api.server.sync.v1.Sync`): WatchAuthorizedEntries pushes a new revision
 * whenever the calling agent's authorized entries changed, so the agent calls Entry/GetAuthorizedEntries at
 * once instead of polling.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { type ServerWritableStream, status } from '@grpc/grpc-js';
import {
  GrpcStatusError,
  type SyncServer,
  type WatchAuthorizedEntriesRequest,
  type WatchAuthorizedEntriesResponse,
} from '@tessera/common/api';
import { type ApiContext, agentOf } from '../../context.js';

/** A digest of an agent's authorized entries (IDs and revisions). */
export function authorizedDigest(ctx: ApiContext, agentId: string): string {
  const h = createHash('sha256');
  const entries = ctx.index
    .authorizedEntries(agentId)
    .map((e) => `${e.id}\u0000${e.revision}`)
    .sort();
  for (const e of entries) h.update(e).update('\u0001');
  const node = ctx.index.node(agentId);
  h.update(node?.banned ? 'banned' : 'ok');
  return h.digest('hex');
}

/** Open watch streams one agent may hold at once (an agent needs one; a few allow reconnect overlap). */
export const MAX_WATCHES_PER_AGENT = 8;

/** Creates the Sync service implementation. */
export function createSyncService(ctx: ApiContext): SyncServer {
  const open = new Map<string, number>();
  return {
    watchAuthorizedEntries(
      call: ServerWritableStream<WatchAuthorizedEntriesRequest, WatchAuthorizedEntriesResponse>,
    ) {
      let agentId: string;
      try {
        agentId = agentOf(ctx, call);
      } catch (err) {
        call.emit('error', err);
        return;
      }
      const held = open.get(agentId) ?? 0;
      if (held >= MAX_WATCHES_PER_AGENT) {
        call.emit(
          'error',
          new GrpcStatusError(status.RESOURCE_EXHAUSTED, 'too many watch streams open for this agent'),
        );
        return;
      }
      open.set(agentId, held + 1);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        const n = (open.get(agentId) ?? 1) - 1;
        if (n <= 0) open.delete(agentId);
        else open.set(agentId, n);
      };
      let revision = 1n;
      let digest = authorizedDigest(ctx, agentId);
      call.write({ revision });
      const unsubscribe = ctx.index.onChange(() => {
        const node = ctx.index.node(agentId);
        if (node === undefined || node.banned) {
          stop();
          call.emit(
            'error',
            Object.assign(new Error('agent is no longer attested'), {
              code: 7,
              details: 'agent is no longer attested',
            }),
          );
          return;
        }
        const next = authorizedDigest(ctx, agentId);
        if (next === digest) return;
        digest = next;
        revision += 1n;
        call.write({ revision });
      });
      const stop = () => {
        unsubscribe();
        release();
      };
      call.on('cancelled', stop);
      call.on('close', stop);
      call.on('error', stop);
    },
  };
}
