import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { AGENT_STATE_FILE, AgentStorage, SVID_CACHE_FILE, writeFileAtomic } from './storage.js';

let dir: string;

describe('AgentStorage', () => {
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'agent-storage-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes files atomically with mode 0600 and leaves no temporary files', async () => {
    const p = join(dir, 'f.json');
    await writeFileAtomic(p, 'one');
    await writeFileAtomic(p, 'two');
    assert.equal(statSync(p).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), ['f.json']);
  });

  it('round-trips the agent state and the svid cache in a 0700 directory', async () => {
    const s = new AgentStorage(join(dir, 'data'));
    await s.init();
    assert.equal(statSync(join(dir, 'data')).mode & 0o777, 0o700);
    assert.equal(await s.loadAgentState(), undefined);
    const state = {
      trustDomain: 'example.org',
      chain: [Buffer.from([1, 2])],
      key: Buffer.from([3]),
      reattestable: true,
      bundle: '{}',
    };
    await s.saveAgentState(state);
    assert.deepEqual(await s.loadAgentState(), state);
    const cache = {
      trustDomain: 'example.org',
      entries: [
        {
          id: 'e1',
          spiffeId: 'spiffe://example.org/a',
          selectors: [{ type: 'unix', value: 'uid:1' }],
          federatesWith: ['other.org'],
          hint: 'h',
          createdAt: '5',
          revision: '2',
          x509SvidTtl: 60,
          jwtSvidTtl: 0,
        },
      ],
      svids: [{ entryId: 'e1', entryRevision: '2', chain: [Buffer.from([9])], key: Buffer.from([8]) }],
      federated: { 'other.org': '{"keys":[]}' },
    };
    await s.saveCache(cache);
    assert.deepEqual(await s.loadCache(), cache);
    await s.clear();
    assert.equal(await s.loadAgentState(), undefined);
    assert.equal(await s.loadCache(), undefined);
  });

  it('writes a cache far larger than one write chunk, produced lazily, that reads back whole', async () => {
    const s = new AgentStorage(join(dir, 'data'));
    await s.init();
    const entry = (i: number) => ({
      id: `e-${i}`,
      spiffeId: `spiffe://example.org/svc/é-${i}`, // multi-byte characters across chunk borders
      selectors: [{ type: 'unix', value: `uid:${i}` }],
      federatesWith: [],
      hint: `h${i}`,
      createdAt: String(i),
      revision: '1',
      x509SvidTtl: 3600,
      jwtSvidTtl: 300,
    });
    const n = 5000;
    await s.saveCache({
      trustDomain: 'example.org',
      entries: (function* () {
        for (let i = 0; i < n; i++) yield entry(i);
      })(),
      svids: [
        { entryId: 'e-1', entryRevision: '1', chain: [Buffer.alloc(700, 7)], key: Buffer.alloc(138, 9) },
      ],
      federated: { 'partner.org': '{"keys":[]}' },
    });
    assert.ok(statSync(join(dir, 'data', SVID_CACHE_FILE)).size > 4 * 64 * 1024);
    const back = await s.loadCache();
    assert.equal(back?.entries.length, n);
    assert.deepEqual(back?.entries[4321], entry(4321));
    assert.deepEqual(back?.svids[0]?.chain[0], Buffer.alloc(700, 7));
    assert.deepEqual(back?.federated, { 'partner.org': '{"keys":[]}' });
  });

  it('tightens a state file that others can read', async () => {
    const s = new AgentStorage(dir);
    await s.saveAgentState({
      trustDomain: 'example.org',
      chain: [],
      key: Buffer.alloc(1),
      reattestable: false,
      bundle: '',
    });
    chmodSync(join(dir, AGENT_STATE_FILE), 0o644);
    await s.loadAgentState();
    assert.equal(statSync(join(dir, AGENT_STATE_FILE)).mode & 0o777, 0o600);
  });

  const corrupt = [
    { name: 'not JSON', text: '{', re: /JSON/ },
    { name: 'an unknown version', text: '{"version":2}', re: /unknown version/ },
    {
      name: 'a key that is not base64',
      text: '{"version":1,"trustDomain":"x","agent":{"chain":[],"key":"%%"},"bundle":""}',
      re: /agent.key is not base64/,
    },
  ];
  for (const tc of corrupt) {
    it(`rejects an agent state with ${tc.name}`, async () => {
      writeFileSync(join(dir, AGENT_STATE_FILE), tc.text, { mode: 0o600 });
      await assert.rejects(new AgentStorage(dir).loadAgentState(), { message: tc.re });
    });
  }

  it('rejects a cache whose entries are not an array', async () => {
    writeFileSync(join(dir, SVID_CACHE_FILE), '{"version":1,"trustDomain":"x","entries":{},"svids":[]}', {
      mode: 0o600,
    });
    await assert.rejects(new AgentStorage(dir).loadCache(), { message: /entries is not an array/ });
  });
});
