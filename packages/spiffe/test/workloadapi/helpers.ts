import { type FakeX509Svid, TestCa } from '@tessera/testing';

/** Root CAs of two trust domains, made once per test file. */
export const caA: TestCa = TestCa.create({ trustDomain: 'example.org' });
export const caB: TestCa = TestCa.create({ trustDomain: 'federated.org' });

/** Mints an X509-SVID of `ca` and shapes it as the fake Workload API serves it. */
export function fakeSvid(ca: TestCa, path: string, hint?: string): FakeX509Svid {
  const id = `spiffe://${ca.trustDomain}${path}`;
  const s = ca.issueX509Svid({ spiffeId: id });
  return {
    spiffeId: id,
    chainDer: s.chainDer,
    keyDer: s.keyDer,
    bundleDer: ca.der,
    ...(hint ? { hint } : {}),
  };
}

/** A sleep that records the requested delays and returns at once (no real waiting). */
export function recordingSleep(): { delays: number[]; sleep: (ms: number) => Promise<void> } {
  const delays: number[] = [];
  return {
    delays,
    sleep: async (ms: number) => {
      delays.push(ms);
      await new Promise((r) => setImmediate(r));
    },
  };
}

/** A sleep that records the delay and then waits until the watch is stopped. */
export function blockingSleep(): {
  delays: number[];
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
} {
  const delays: number[] = [];
  return {
    delays,
    sleep: (ms, signal) => {
      delays.push(ms);
      return new Promise<void>((r) => {
        if (signal.aborted) r();
        else signal.addEventListener('abort', () => r(), { once: true });
      });
    },
  };
}

/** Resolves when `cond()` holds, polling on the event loop (bounded, so a bug fails instead of hanging). */
export async function until(cond: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}
