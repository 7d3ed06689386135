import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  matchAny,
  matchId,
  matchMemberOf,
  matchOneOf,
  SpiffeId,
  TrustDomain,
} from '@tessera/spiffe/spiffeid';

const a = SpiffeId.fromString('spiffe://example.org/a');
const b = SpiffeId.fromString('spiffe://example.org/b');
const other = SpiffeId.fromString('spiffe://other.org/a');

describe('matchers', () => {
  it('matchAny accepts every ID', () => {
    matchAny()(a);
    matchAny()(other);
  });

  it('matchId accepts the same ID and refuses others with ERR_MATCHER_MISMATCH', () => {
    const m = matchId(SpiffeId.fromString('spiffe://example.org/a'));
    m(a);
    assert.throws(() => m(b), {
      name: 'SpiffeIdError',
      code: 'ERR_MATCHER_MISMATCH',
      message: 'spiffeid: unexpected ID "spiffe://example.org/b"',
    });
  });

  it('matchOneOf accepts any listed ID, and nothing when none is listed', () => {
    const m = matchOneOf(a, b);
    m(a);
    m(b);
    assert.throws(() => m(other), {
      code: 'ERR_MATCHER_MISMATCH',
      message: 'spiffeid: unexpected ID "spiffe://other.org/a"',
    });
    assert.throws(() => matchOneOf()(a), { code: 'ERR_MATCHER_MISMATCH' });
  });

  it('matchMemberOf accepts IDs of the trust domain only', () => {
    const m = matchMemberOf(TrustDomain.fromString('example.org'));
    m(a);
    m(TrustDomain.fromString('example.org').id());
    assert.throws(() => m(other), {
      code: 'ERR_MATCHER_MISMATCH',
      message: 'spiffeid: unexpected trust domain "other.org"',
    });
  });

  it('throws TypeError when given something that is not a SpiffeId', () => {
    assert.throws(() => matchAny()('spiffe://example.org/a' as unknown as SpiffeId), TypeError);
    assert.throws(() => matchId('spiffe://example.org/a' as unknown as SpiffeId), TypeError);
  });
});
