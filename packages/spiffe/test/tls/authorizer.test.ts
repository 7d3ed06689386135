import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { matchId, matchMemberOf, SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import {
  type Authorizer,
  adaptMatcher,
  authorizeAny,
  authorizeId,
  authorizeMatching,
  authorizeMemberOf,
  authorizeOneOf,
} from '@tessera/spiffe/tls';

const td = TrustDomain.fromString('example.org');
const a = SpiffeId.require('spiffe://example.org/a');
const b = SpiffeId.require('spiffe://example.org/b');
const other = SpiffeId.require('spiffe://other.org/a');

interface Case {
  name: string;
  authorizer: Authorizer;
  id: SpiffeId;
  refused?: RegExp;
}

const cases: Case[] = [
  { name: 'authorizeAny allows any verified peer', authorizer: authorizeAny(), id: other },
  { name: 'authorizeId allows the expected ID', authorizer: authorizeId(a), id: a },
  {
    name: 'authorizeId refuses another ID',
    authorizer: authorizeId(a),
    id: b,
    refused: /^tls: unexpected ID "spiffe:\/\/example\.org\/b"$/,
  },
  { name: 'authorizeOneOf allows a listed ID', authorizer: authorizeOneOf(a, b), id: b },
  {
    name: 'authorizeOneOf refuses an unlisted ID',
    authorizer: authorizeOneOf(a, b),
    id: other,
    refused: /^tls: unexpected ID "spiffe:\/\/other\.org\/a"$/,
  },
  {
    name: 'authorizeOneOf with no IDs refuses everyone',
    authorizer: authorizeOneOf(),
    id: a,
    refused: /^tls: unexpected ID/,
  },
  { name: 'authorizeMemberOf allows a member', authorizer: authorizeMemberOf(td), id: b },
  {
    name: 'authorizeMemberOf refuses another trust domain',
    authorizer: authorizeMemberOf(td),
    id: other,
    refused: /^tls: unexpected trust domain "other\.org"$/,
  },
  { name: 'adaptMatcher allows what the matcher allows', authorizer: adaptMatcher(matchMemberOf(td)), id: a },
  {
    name: 'adaptMatcher refuses what the matcher refuses',
    authorizer: adaptMatcher(matchId(a)),
    id: b,
    refused: /^tls: unexpected ID "spiffe:\/\/example\.org\/b"$/,
  },
  {
    name: 'adaptMatcher refuses when the matcher throws something else',
    authorizer: adaptMatcher(() => {
      throw new Error('boom');
    }),
    id: a,
    refused: /^tls: matcher refused ID "spiffe:\/\/example\.org\/a"$/,
  },
  {
    name: 'authorizeMatching allows when the predicate returns true',
    authorizer: authorizeMatching((id) => id.path === '/a'),
    id: a,
  },
  {
    name: 'authorizeMatching refuses when the predicate returns false',
    authorizer: authorizeMatching((id) => id.path === '/a'),
    id: b,
    refused: /^tls: unexpected ID "spiffe:\/\/example\.org\/b"$/,
  },
  {
    name: 'authorizeMatching refuses a predicate that returns nothing (a matcher passed by mistake)',
    authorizer: authorizeMatching(matchAny() as unknown as (id: SpiffeId) => boolean),
    id: a,
    refused: /^tls: unexpected ID/,
  },
  {
    name: 'authorizeMatching refuses when the predicate throws',
    authorizer: authorizeMatching(() => {
      throw new Error('boom');
    }),
    id: a,
    refused: /^tls: unexpected ID/,
  },
  {
    name: 'authorizeMatching with a RegExp allows a matching ID',
    authorizer: authorizeMatching(/^spiffe:\/\/example\.org\/[ab]$/),
    id: b,
  },
  {
    name: 'authorizeMatching with a RegExp refuses a non-matching ID',
    authorizer: authorizeMatching(/^spiffe:\/\/example\.org\/[ab]$/),
    id: other,
    refused: /^tls: unexpected ID "spiffe:\/\/other\.org\/a"$/,
  },
];

function matchAny(): (id: SpiffeId) => void {
  return () => {};
}

describe('tls authorizers', () => {
  for (const tc of cases) {
    it(tc.name, () => {
      if (tc.refused === undefined) {
        assert.doesNotThrow(() => tc.authorizer(tc.id, []));
      } else {
        assert.throws(() => tc.authorizer(tc.id, []), {
          name: 'TlsError',
          code: 'ERR_TLS_AUTHORIZATION_FAILED',
          message: tc.refused,
        });
      }
    });
  }

  it('keeps the matcher error as the cause of a refusal', () => {
    try {
      adaptMatcher(matchId(a))(b, []);
      assert.fail('expected a refusal');
    } catch (err) {
      assert.equal((err as { cause?: { code?: string } }).cause?.code, 'ERR_MATCHER_MISMATCH');
    }
  });

  it('gives the same answer every time for a global RegExp', () => {
    const auth = authorizeMatching(/^spiffe:\/\/example\.org\/a$/g);
    for (let i = 0; i < 3; i++) assert.doesNotThrow(() => auth(a, []));
  });

  it('throws TypeError on programmer misuse', () => {
    assert.throws(() => authorizeId('spiffe://example.org/a' as unknown as SpiffeId), TypeError);
    assert.throws(() => authorizeOneOf('x' as unknown as SpiffeId), TypeError);
    assert.throws(() => authorizeMemberOf('example.org' as unknown as TrustDomain), TypeError);
    assert.throws(() => authorizeMatching('x' as unknown as RegExp), TypeError);
    assert.throws(() => authorizeAny()('spiffe://example.org/a' as unknown as SpiffeId, []), TypeError);
  });
});
