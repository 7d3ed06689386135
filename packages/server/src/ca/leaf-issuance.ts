/**
 * Issuing one X509-SVID leaf from a CSR: verify the CSR (proof of possession), then sign the leaf with an
 * issuer context. Pure (no clock, no CA state): the CA decides the SPIFFE ID and validity before a job is made,
 * so the same code runs in the server's main thread and in the issuance worker threads.
 *
 * @module
 */
import {
  buildCertificate,
  buildLeafSvid,
  type IssuerContext,
  LEAF_KEY_USAGE,
  parseCsr,
} from '@tessera/common/x509';
import { X509SvidError } from '@tessera/spiffe/errors';

/** One leaf to issue: the CA has already checked the ID, the TTL and the DNS names. */
export interface LeafJob {
  /** DER PKCS#10 request (its signature is verified). */
  readonly csr: Uint8Array;
  readonly spiffeId: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  /** DNS SANs; the first one becomes the subject's common name. */
  readonly dnsNames: readonly string[];
}

/**
 * The outcome of a {@link LeafJob}: the leaf DER, or why not. `csr` faults are the CSR's own (malformed, bad
 * proof of possession, unsupported key: the caller's error); `internal` faults are ours.
 */
export type LeafOutcome =
  | { readonly der: Uint8Array }
  | { readonly fault: 'csr' | 'internal'; readonly message: string };

/** Issues one leaf; never throws (every failure is an outcome). */
export function issueLeaf(job: LeafJob, ctx: IssuerContext): LeafOutcome {
  let csr: ReturnType<typeof parseCsr>;
  try {
    csr = parseCsr(job.csr);
  } catch (err) {
    if (err instanceof X509SvidError) return { fault: 'csr', message: err.message };
    return { fault: 'internal', message: err instanceof Error ? err.message : String(err) };
  }
  try {
    const notBefore = new Date(job.notBeforeMs);
    const notAfter = new Date(job.notAfterMs);
    if (job.dnsNames.length === 0) {
      return { der: buildLeafSvid(job.spiffeId, csr.spkiDer, notBefore, notAfter, ctx) };
    }
    const built = buildCertificate(
      {
        publicKey: csr.publicKey,
        subject: { commonName: job.dnsNames[0] as string },
        notBefore,
        notAfter,
        basicConstraints: { ca: false },
        keyUsage: { usages: LEAF_KEY_USAGE },
        extKeyUsage: ['serverAuth', 'clientAuth'],
        subjectAltName: { uris: [job.spiffeId], dnsNames: job.dnsNames },
      },
      { certificate: ctx.certificate, privateKey: ctx.privateKey },
    );
    return { der: built.der };
  } catch (err) {
    return { fault: 'internal', message: err instanceof Error ? err.message : String(err) };
  }
}

/** Jobs as sent to a worker: the CSRs concatenated into one buffer (one copy instead of one per view). */
export interface PackedJobs {
  readonly csrs: Uint8Array;
  readonly csrLengths: readonly number[];
  readonly jobs: readonly Omit<LeafJob, 'csr'>[];
}

/** Packs jobs for a worker. */
export function packJobs(jobs: readonly LeafJob[]): PackedJobs {
  const csrs = concatOwned(jobs.map((j) => j.csr));
  return {
    csrs,
    csrLengths: jobs.map((j) => j.csr.byteLength),
    jobs: jobs.map((j) => ({
      spiffeId: j.spiffeId,
      notBeforeMs: j.notBeforeMs,
      notAfterMs: j.notAfterMs,
      dnsNames: j.dnsNames,
    })),
  };
}

/** Unpacks what {@link packJobs} made. */
export function unpackJobs(packed: PackedJobs): LeafJob[] {
  const buf = Buffer.from(packed.csrs.buffer, packed.csrs.byteOffset, packed.csrs.byteLength);
  const out: LeafJob[] = [];
  let at = 0;
  packed.jobs.forEach((j, i) => {
    const len = packed.csrLengths[i] ?? 0;
    out.push({ ...j, csr: buf.subarray(at, at + len) });
    at += len;
  });
  return out;
}

/**
 * Concatenates into a fresh Uint8Array that owns its ArrayBuffer: structured clone copies a view's whole
 * ArrayBuffer (Buffer's 8 KiB pool slabs included), so only owned buffers are posted, or transferred.
 */
export function concatOwned(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.byteLength;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
