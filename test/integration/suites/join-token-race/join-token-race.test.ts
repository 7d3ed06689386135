/**
 * join-token-race: 20 concurrent join_token attestations with the same token, each on its own TLS connection to
 * the built server's agent API, yield exactly one agent X509-SVID.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { X509Bundle } from '@tessera/spiffe/bundle';
import type { X509Svid } from '@tessera/spiffe/svid';
import { agentClient, attestJoinToken, currentBundle } from '../../harness/api.js';
import { TesseraServer } from '../../harness/server.js';

const ATTEMPTS = 20;

describe('join-token-race: a join token is single use under concurrent attestations', () => {
  let server: TesseraServer;
  let bundle: X509Bundle;
  let token = '';
  let results: PromiseSettledResult<X509Svid>[] = [];

  before(async () => {
    // Rate limiting of attestations per caller address is disabled so that all 20 reach the attestor.
    server = await TesseraServer.start({ config: { rate_limit: { attestation: 0 } } });
    bundle = await currentBundle(server);
  });
  after(async () => {
    await server?.stop();
  });

  it('01 generates a join token with the CLI', async () => {
    const r = await server.cli(['token', 'generate', '--ttl', '5m']);
    assert.equal(r.code, 0, r.stderr);
    token = /^Token: (\S+)$/m.exec(r.stdout)?.[1] ?? '';
    assert.notEqual(token, '');
  });

  it(`02 runs ${ATTEMPTS} attestations with that token at once`, async () => {
    const clients = Array.from({ length: ATTEMPTS }, () => agentClient(server, bundle));
    try {
      // Connect every channel first so the attempts race at the attestor, not at the TLS handshake.
      await Promise.all(clients.map((c) => c.waitForReady(Date.now() + 10_000)));
      results = await Promise.allSettled(clients.map((c) => attestJoinToken(c, token)));
    } finally {
      for (const c of clients) c.close();
    }
    assert.equal(results.length, ATTEMPTS);
  });

  it('03 exactly one attestation got an agent SVID, with the join_token agent ID', () => {
    const ok = results.filter((r): r is PromiseFulfilledResult<X509Svid> => r.status === 'fulfilled');
    const failed = results.filter((r) => r.status === 'rejected');
    assert.equal(
      ok.length,
      1,
      `successes: ${ok.length}; failures: ${failed.map((f) => String((f as PromiseRejectedResult).reason)).join(' | ')}`,
    );
    assert.equal(ok[0]?.value.id.toString(), `spiffe://example.org/spire/agent/join_token/${token}`);
    for (const f of failed) {
      const reason = (f as PromiseRejectedResult).reason as { code?: number };
      assert.equal(typeof reason.code, 'number', String(reason));
    }
  });

  it('04 the server lists exactly one attested agent', async () => {
    const r = await server.cli(['agent', 'count', '--output', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { count: number }).count, 1);
  });

  it('05 the token cannot be used again', async () => {
    const c = agentClient(server, bundle);
    try {
      await assert.rejects(attestJoinToken(c, token));
    } finally {
      c.close();
    }
  });
});
