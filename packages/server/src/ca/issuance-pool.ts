/**
 * A small pool of worker threads that verify CSRs and sign X509-SVID leaves, so batch issuance uses more
 * than one core. The main thread keeps every decision (authorization, SPIFFE ID, validity, which authority):
 * workers get finished {@link LeafJob}s and the authority's certificate and key, and return DER or a fault,
 * in order. A worker that fails or exits has its jobs rejected (the CA then issues them in-process) and is
 * replaced on next use. Idle workers do not keep the process alive.
 *
 * @module
 */
import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { type LeafJob, type LeafOutcome, type PackedJobs, packJobs } from './leaf-issuance.js';

/** The authority a batch is signed with. */
export interface PoolAuthority {
  readonly id: string;
  readonly certificateDer: Uint8Array;
  readonly privateKey: KeyObject;
}

/** @internal Main → worker. */
export interface WorkerRequest {
  readonly seq: number;
  /** Sent the first time a worker sees this authority. */
  readonly authority?: {
    readonly id: string;
    readonly certificateDer: Uint8Array;
    readonly privateKey: unknown;
  };
  readonly authorityId: string;
  readonly packed: PackedJobs;
}

/** @internal Worker → main. */
export interface WorkerReply {
  readonly seq: number;
  readonly error?: string;
  readonly ders?: Uint8Array;
  readonly results?: (
    | { readonly length: number }
    | { readonly fault: 'csr' | 'internal'; readonly message: string }
  )[];
}

interface Pending {
  readonly resolve: (outcomes: LeafOutcome[]) => void;
  readonly reject: (err: Error) => void;
  readonly jobs: number;
}

interface Slot {
  readonly worker: Worker;
  readonly known: Set<string>;
  readonly pending: Map<number, Pending>;
  queued: number;
  dead: boolean;
}

/** Fewer jobs than this per worker are not worth a thread hop. */
const MIN_JOBS_PER_WORKER = 8;

/**
 * The pool. `size` workers are started lazily, on the first batch.
 *
 * @example
 * ```ts
 * const pool = new IssuancePool(2);
 * const outcomes = await pool.issue({ id, certificateDer, privateKey }, jobs);
 * await pool.close();
 * ```
 */
export class IssuancePool {
  readonly #size: number;
  readonly #slots: (Slot | undefined)[];
  #seq = 0;
  #closed = false;

  /** @throws {RangeError} when `size` is not a positive integer. */
  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`ca: issuance pool size must be a positive integer, got ${String(size)}`);
    }
    this.#size = size;
    this.#slots = new Array<Slot | undefined>(size).fill(undefined);
  }

  /** Number of workers. */
  get size(): number {
    return this.#size;
  }

  /** Whether a batch of `n` jobs is worth sending to the pool. */
  worthIt(n: number): boolean {
    return !this.#closed && n >= 2;
  }

  /**
   * Issues `jobs` with `authority` on the workers; the outcomes are in the order of the jobs.
   * Rejects when a worker fails (the caller may then issue in-process) or the pool is closed.
   */
  async issue(authority: PoolAuthority, jobs: readonly LeafJob[]): Promise<LeafOutcome[]> {
    if (this.#closed) throw new Error('ca: issuance pool is closed');
    if (jobs.length === 0) return [];
    const parts = Math.max(1, Math.min(this.#size, Math.floor(jobs.length / MIN_JOBS_PER_WORKER)));
    const per = Math.ceil(jobs.length / parts);
    const chunks: Promise<LeafOutcome[]>[] = [];
    for (let at = 0; at < jobs.length; at += per) {
      chunks.push(this.#send(this.#leastBusy(), authority, jobs.slice(at, at + per)));
    }
    return (await Promise.all(chunks)).flat();
  }

  /** Terminates the workers; pending batches are rejected. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const slots = this.#slots.splice(0, this.#slots.length, ...new Array<undefined>(this.#size));
    await Promise.all(
      slots.map(async (s) => {
        if (s === undefined) return;
        this.#fail(s, new Error('ca: issuance pool is closed'));
        await s.worker.terminate();
      }),
    );
  }

  #leastBusy(): number {
    let best = 0;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.#size; i++) {
      const s = this.#slots[i];
      const load = s === undefined || s.dead ? 0 : s.queued;
      if (load < bestLoad) {
        best = i;
        bestLoad = load;
      }
    }
    return best;
  }

  #slot(i: number): Slot {
    const existing = this.#slots[i];
    if (existing !== undefined && !existing.dead) return existing;
    const worker = new Worker(new URL('./issuance-worker.js', import.meta.url));
    worker.unref();
    const slot: Slot = { worker, known: new Set(), pending: new Map(), queued: 0, dead: false };
    worker.on('message', (reply: WorkerReply) => this.#onReply(slot, reply));
    worker.on('error', (err) => this.#fail(slot, err));
    worker.on('exit', (code) => this.#fail(slot, new Error(`ca: issuance worker exited with code ${code}`)));
    this.#slots[i] = slot;
    return slot;
  }

  #send(i: number, authority: PoolAuthority, jobs: readonly LeafJob[]): Promise<LeafOutcome[]> {
    const slot = this.#slot(i);
    const seq = ++this.#seq;
    const packed = packJobs(jobs);
    const req: WorkerRequest = {
      seq,
      authorityId: authority.id,
      packed,
      ...(slot.known.has(authority.id)
        ? {}
        : {
            authority: {
              id: authority.id,
              certificateDer: authority.certificateDer,
              privateKey: authority.privateKey,
            },
          }),
    };
    return new Promise<LeafOutcome[]>((resolve, reject) => {
      if (slot.pending.size === 0) slot.worker.ref();
      slot.pending.set(seq, { resolve, reject, jobs: jobs.length });
      slot.queued += jobs.length;
      slot.known.add(authority.id);
      slot.worker.postMessage(req, [packed.csrs.buffer as ArrayBuffer]);
    });
  }

  #onReply(slot: Slot, reply: WorkerReply): void {
    const p = slot.pending.get(reply.seq);
    if (p === undefined) return;
    slot.pending.delete(reply.seq);
    slot.queued -= p.jobs;
    if (slot.pending.size === 0) slot.worker.unref();
    if (reply.error !== undefined || reply.results === undefined || reply.ders === undefined) {
      // The worker lost the authority (it should not): forget what it knows so the next batch resends it.
      slot.known.clear();
      p.reject(new Error(reply.error ?? 'ca: malformed issuance worker reply'));
      return;
    }
    if (reply.results.length !== p.jobs) {
      p.reject(new Error('ca: issuance worker returned a wrong number of results'));
      return;
    }
    const ders = Buffer.from(reply.ders.buffer, reply.ders.byteOffset, reply.ders.byteLength);
    let at = 0;
    const out: LeafOutcome[] = reply.results.map((r) => {
      if ('length' in r) {
        const der = ders.subarray(at, at + r.length);
        at += r.length;
        return { der };
      }
      return { fault: r.fault, message: r.message };
    });
    p.resolve(out);
  }

  #fail(slot: Slot, err: Error): void {
    slot.dead = true;
    for (const p of slot.pending.values()) p.reject(err);
    slot.pending.clear();
    slot.queued = 0;
  }
}
