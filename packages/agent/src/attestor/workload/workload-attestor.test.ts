import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PeerInfo } from '../../peertracker/peertracker.js';
import { createWorkloadAttestor, type WorkloadAttestorPlugin } from './workload-attestor.js';

function peer(alive: () => boolean, pid = 1234): PeerInfo {
  return { pid, uid: 1, gid: 1, isAlive: alive };
}
const plugin = (name: string, values: string[], onAttest?: () => void): WorkloadAttestorPlugin => ({
  name,
  async attest() {
    onAttest?.();
    return values.map((value) => ({ type: name, value }));
  },
});

describe('workload attestor', () => {
  it('combines the selectors of every plugin without duplicates', async () => {
    const a = createWorkloadAttestor({
      plugins: [plugin('unix', ['uid:1', 'gid:1', 'uid:1']), plugin('docker', [])],
    });
    assert.deepEqual(await a.attest(peer(() => true)), [
      { type: 'unix', value: 'uid:1' },
      { type: 'unix', value: 'gid:1' },
    ]);
  });

  it('refuses a peer that already exited', async () => {
    let ran = false;
    const a = createWorkloadAttestor({ plugins: [plugin('unix', ['uid:1'], () => (ran = true))] });
    await assert.rejects(a.attest(peer(() => false)), {
      code: 'ERR_WORKLOAD_ATTESTATION_FAILED',
      message: /^workload attestation: caller process "1234" has exited \(its pid may have been reused\)$/,
    });
    assert.equal(ran, false);
  });

  it('refuses a peer that exits while /proc is read (its pid may be reused)', async () => {
    let alive = true;
    const a = createWorkloadAttestor({ plugins: [plugin('unix', ['uid:1'], () => (alive = false))] });
    await assert.rejects(a.attest(peer(() => alive)), {
      code: 'ERR_WORKLOAD_ATTESTATION_FAILED',
      message: /has exited/,
    });
  });

  it('refuses a peer with no visible pid', async () => {
    const a = createWorkloadAttestor({ plugins: [] });
    await assert.rejects(a.attest(peer(() => true, 0)), { code: 'ERR_WORKLOAD_ATTESTATION_FAILED' });
  });

  it('wraps a plugin failure that is not an attestation error', async () => {
    const broken: WorkloadAttestorPlugin = {
      name: 'broken',
      attest: () => Promise.reject(new Error('boom')),
    };
    await assert.rejects(createWorkloadAttestor({ plugins: [broken] }).attest(peer(() => true)), {
      code: 'ERR_WORKLOAD_ATTESTATION_FAILED',
      message: /^workload attestation: attestor "broken" failed for pid "1234"$/,
    });
  });
});
