/**
 * Entry point of an issuance worker thread (see issuance-pool.ts): verifies CSRs and signs leaves with the
 * authorities the main thread sends. Holds no other state and makes no decision: IDs and validity come from
 * the CA in the main thread.
 *
 * @module
 */
import type { KeyObject } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { createIssuerContext, type IssuerContext } from '@tessera/common/x509';
import type { WorkerReply, WorkerRequest } from './issuance-pool.js';
import { concatOwned, issueLeaf, type PackedJobs, unpackJobs } from './leaf-issuance.js';

/** Issuer contexts by authority ID; the few most recent are kept (an active one, maybe one just replaced). */
const contexts = new Map<string, IssuerContext>();
const MAX_CONTEXTS = 4;

function contextFor(req: WorkerRequest): IssuerContext {
  if (req.authority !== undefined) {
    const ctx = createIssuerContext({
      certificate: new X509Certificate(req.authority.certificateDer),
      privateKey: req.authority.privateKey as KeyObject,
    });
    contexts.delete(req.authority.id);
    contexts.set(req.authority.id, ctx);
    while (contexts.size > MAX_CONTEXTS) {
      const oldest = contexts.keys().next().value;
      if (oldest === undefined) break;
      contexts.delete(oldest);
    }
  }
  const ctx = contexts.get(req.authorityId);
  if (ctx === undefined) throw new Error(`issuance worker: unknown authority "${req.authorityId}"`);
  return ctx;
}

function run(req: WorkerRequest): WorkerReply {
  let ctx: IssuerContext;
  try {
    ctx = contextFor(req);
  } catch (err) {
    return { seq: req.seq, error: err instanceof Error ? err.message : String(err) };
  }
  const ders: Uint8Array[] = [];
  const results: WorkerReply['results'] = [];
  for (const job of unpackJobs(req.packed as PackedJobs)) {
    const outcome = issueLeaf(job, ctx);
    if ('der' in outcome) {
      ders.push(outcome.der);
      results.push({ length: outcome.der.byteLength });
    } else {
      results.push(outcome);
    }
  }
  return { seq: req.seq, ders: concatOwned(ders), results };
}

const port = parentPort;
if (port === null) throw new Error('issuance worker: must run in a worker thread');
port.on('message', (req: WorkerRequest) => {
  const reply = run(req);
  port.postMessage(reply, reply.ders === undefined ? [] : [reply.ders.buffer as ArrayBuffer]);
});
