import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';

const TD_CHARS_MSG =
  'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores';

describe('TrustDomain.fromString', () => {
  const accepted: Array<{ input: string; name: string }> = [
    { input: 'example.org', name: 'example.org' },
    { input: 'ex_am-ple.1', name: 'ex_am-ple.1' },
    { input: '10.0.0.1', name: '10.0.0.1' },
    { input: 'spiffe://example.org', name: 'example.org' },
    { input: 'spiffe://example.org/a/b', name: 'example.org' },
    { input: 'xn--r8jz45g.jp', name: 'xn--r8jz45g.jp' },
  ];
  for (const tc of accepted) {
    it(`accepts ${JSON.stringify(tc.input)} as ${tc.name}`, () => {
      const td = TrustDomain.fromString(tc.input);
      assert.equal(td.name, tc.name);
      assert.equal(td.toString(), tc.name);
      assert.equal(td.idString(), `spiffe://${tc.name}`);
      assert.equal(td.id().toString(), `spiffe://${tc.name}`);
      assert.equal(td.id().path, '');
      assert.ok(td.id().trustDomain.equals(td));
    });
  }

  const rejected: Array<{ input: string; code: string; message: string }> = [
    { input: '', code: 'ERR_TRUST_DOMAIN_INVALID', message: 'spiffeid: trust domain is missing' },
    {
      input: 'Example.org',
      code: 'ERR_TRUST_DOMAIN_INVALID',
      message: `spiffeid: ${TD_CHARS_MSG}: "Example.org"`,
    },
    { input: 'td:443', code: 'ERR_TRUST_DOMAIN_INVALID', message: `spiffeid: ${TD_CHARS_MSG}: "td:443"` },
    { input: 'exa$mple', code: 'ERR_TRUST_DOMAIN_INVALID', message: `spiffeid: ${TD_CHARS_MSG}: "exa$mple"` },
    { input: '例え.jp', code: 'ERR_TRUST_DOMAIN_INVALID', message: `spiffeid: ${TD_CHARS_MSG}: "例え.jp"` },
    {
      input: 'spiffe:/example.org',
      code: 'ERR_SPIFFEID_INVALID',
      message: 'spiffeid: scheme is missing or invalid: "spiffe:/example.org"',
    },
    {
      input: 'spiffe://example.org/',
      code: 'ERR_SPIFFEID_INVALID',
      message: 'spiffeid: path cannot have a trailing slash: "spiffe://example.org/"',
    },
    {
      input: 'https://example.org',
      code: 'ERR_SPIFFEID_INVALID',
      message: 'spiffeid: scheme is missing or invalid: "https://example.org"',
    },
  ];
  for (const tc of rejected) {
    it(`rejects ${JSON.stringify(tc.input)} with ${tc.code}`, () => {
      assert.throws(() => TrustDomain.fromString(tc.input), {
        name: 'SpiffeIdError',
        code: tc.code,
        message: tc.message,
      });
    });
  }

  it('ID-16: accepts a 255-byte name and refuses a 256-byte one, bare or inside an ID', () => {
    const n255 = 'a'.repeat(255);
    assert.equal(TrustDomain.fromString(n255).name, n255);
    assert.equal(TrustDomain.fromString(`spiffe://${n255}/x`).name, n255);
    const n256 = 'a'.repeat(256);
    assert.throws(() => TrustDomain.fromString(n256), {
      code: 'ERR_TRUST_DOMAIN_INVALID',
      message: /^spiffeid: trust domain cannot be longer than 255 bytes/,
    });
    assert.throws(() => TrustDomain.fromString(`spiffe://${n256}/x`), {
      code: 'ERR_SPIFFEID_INVALID',
      message: /^spiffeid: trust domain cannot be longer than 255 bytes/,
    });
  });

  it('compares by exact name and orders lexicographically', () => {
    const a = TrustDomain.fromString('a.org');
    const b = TrustDomain.fromString('b.org');
    assert.ok(a.equals(TrustDomain.fromString('spiffe://a.org/x')));
    assert.equal(a.equals(b), false);
    assert.equal(a.equals(undefined), false);
    assert.ok(a.compare(b) < 0);
    assert.ok(b.compare(a) > 0);
    assert.equal(a.compare(TrustDomain.fromString('a.org')), 0);
    const sorted = ['c.org', 'a.org', 'b.org']
      .map((n) => TrustDomain.fromString(n))
      .sort((x, y) => x.compare(y));
    assert.deepEqual(
      sorted.map((t) => t.name),
      ['a.org', 'b.org', 'c.org'],
    );
  });

  it('is the trust domain of IDs parsed in it', () => {
    const td = TrustDomain.fromString('example.org');
    const id = SpiffeId.fromString('spiffe://example.org/w');
    assert.ok(id.trustDomain.equals(td));
    assert.ok(id.memberOf(td));
    assert.equal(JSON.stringify(td), '"example.org"');
  });
});
