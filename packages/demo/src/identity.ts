/**
 * What both demo services share: command-line parsing, the X509Source that picks the service's own SVID by
 * its hint, and the rotation log.
 *
 * @module
 */
import { parseArgs } from 'node:util';
import { SpiffeId } from '@tessera/spiffe/spiffeid';
import type { X509Svid } from '@tessera/spiffe/svid';
import { X509Source } from '@tessera/spiffe/workloadapi';

/** Command-line options of a demo service. */
export interface DemoArgs {
  /** Hint of the registration entry whose SVID this service presents. */
  readonly hint: string;
  /** SPIFFE ID of this service (its SVID must carry it). */
  readonly self: SpiffeId;
  /** SPIFFE ID the peer must present. */
  readonly peer: SpiffeId;
  /** Port (server: to listen on, 0 for any; client: to connect to). */
  readonly port: number;
  /** Seconds between requests (client only). */
  readonly interval: number;
}

/** Parses `--hint H --self ID --peer ID [--port N] [--interval S]`; exits with status 2 on bad usage. */
export function parseDemoArgs(name: string): DemoArgs {
  try {
    const { values } = parseArgs({
      options: {
        hint: { type: 'string' },
        self: { type: 'string' },
        peer: { type: 'string' },
        port: { type: 'string', default: '0' },
        interval: { type: 'string', default: '2' },
      },
      strict: true,
    });
    if (values.hint === undefined || values.self === undefined || values.peer === undefined) {
      throw new Error('--hint, --self and --peer are required');
    }
    const port = Number(values.port);
    const interval = Number(values.interval);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad --port "${values.port}"`);
    if (!(interval > 0)) throw new Error(`bad --interval "${values.interval}"`);
    return {
      hint: values.hint,
      self: SpiffeId.fromString(values.self),
      peer: SpiffeId.fromString(values.peer),
      port,
      interval,
    };
  } catch (err) {
    console.error(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  }
}

/** Short form of a certificate serial number for log lines. */
export function shortSerial(svid: X509Svid): string {
  return svid.certificates[0]?.serialNumber.slice(-8).toLowerCase() ?? '?';
}

/** Expiry time of an SVID's leaf as HH:MM:SS (local time). */
export function expiryOf(svid: X509Svid): string {
  const leaf = svid.certificates[0];
  return leaf === undefined ? '?' : new Date(leaf.validTo).toTimeString().slice(0, 8);
}

function pick(svids: readonly X509Svid[], args: DemoArgs): X509Svid {
  const svid = svids.find((s) => s.hint === args.hint);
  if (svid === undefined) {
    throw new Error(`demo: the workload has no SVID with hint "${args.hint}"`);
  }
  if (!svid.id.equals(args.self)) {
    throw new Error(`demo: the SVID with hint "${args.hint}" is "${svid.id}", expected "${args.self}"`);
  }
  return svid;
}

/**
 * Opens an X509Source on `SPIFFE_ENDPOINT_SOCKET` whose default SVID is the one with this service's hint,
 * waits (bounded) until that SVID is present, and logs every rotation of it.
 */
export async function openIdentity(name: string, args: DemoArgs, waitMs = 60_000): Promise<X509Source> {
  const source = await X509Source.create({
    picker: (svids) => pick(svids, args),
    signal: AbortSignal.timeout(waitMs),
  });
  const has = () => source.getX509Svids().some((s) => s.hint === args.hint && s.id.equals(args.self));
  if (!has()) {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no SVID with hint "${args.hint}" for ${args.self} after ${waitMs / 1000}s`));
      }, waitMs);
      const off = source.onUpdate(() => {
        if (!has()) return;
        clearTimeout(timer);
        off();
        resolve();
      });
    });
  }
  let current = source.getX509Svid();
  console.log(
    `demo: ${name} got ${current.id} (serial ${shortSerial(current)}, expires ${expiryOf(current)})`,
  );
  source.onUpdate(() => {
    let next: X509Svid;
    try {
      next = source.getX509Svid();
    } catch (err) {
      console.log(`demo: ${name} lost its SVID: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    if (next.certificates[0]?.serialNumber === current.certificates[0]?.serialNumber) return;
    console.log(
      `demo: rotation: ${name} ${next.id} serial ${shortSerial(current)} -> ${shortSerial(next)} (expires ${expiryOf(next)})`,
    );
    current = next;
  });
  return source;
}

/** Runs `stop` once on SIGINT or SIGTERM, then exits 0. */
export function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = () => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
