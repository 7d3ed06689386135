import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { joinPathSegments, SpiffeId, TrustDomain, validatePath } from '@tessera/spiffe/spiffeid';

const TD_CHARS_MSG =
  'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores';
const PATH_CHARS_MSG =
  'path segment characters are limited to letters, numbers, dots, dashes, and underscores';

function rejects(input: string, reason: string): void {
  assert.throws(
    () => SpiffeId.fromString(input),
    (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.equal((err as { code?: string }).code, 'ERR_SPIFFEID_INVALID');
      assert.equal(err.name, 'SpiffeIdError');
      const expected = input === '' ? `spiffeid: ${reason}` : `spiffeid: ${reason}: ${JSON.stringify(input)}`;
      assert.equal(err.message, expected);
      return true;
    },
  );
  assert.equal(SpiffeId.isValid(input), false);
}

function accepts(input: string, td: string, path: string): void {
  const id = SpiffeId.fromString(input);
  assert.equal(id.toString(), input);
  assert.equal(id.trustDomain.name, td);
  assert.equal(id.path, path);
  assert.equal(SpiffeId.isValid(input), true);
}

describe('SpiffeId.fromString (CONFORMANCE §1.1)', () => {
  const rejected: Array<{ row: string; input: string; reason: string }> = [
    { row: 'ID-01', input: 'https://example.org/a', reason: 'scheme is missing or invalid' },
    { row: 'ID-01', input: 'example.org/a', reason: 'scheme is missing or invalid' },
    { row: 'ID-01', input: 'spiffe:/example.org/a', reason: 'scheme is missing or invalid' },
    { row: 'ID-02', input: 'SPIFFE://example.org/a', reason: 'scheme is missing or invalid' },
    { row: 'ID-02', input: 'Spiffe://example.org/a', reason: 'scheme is missing or invalid' },
    { row: 'ID-02', input: 'spiffe://Example.org/a', reason: TD_CHARS_MSG },
    { row: 'ID-03', input: 'spiffe://', reason: 'trust domain is missing' },
    { row: 'ID-03', input: 'spiffe:///a', reason: 'trust domain is missing' },
    { row: 'ID-04', input: 'spiffe://user@example.org/a', reason: TD_CHARS_MSG },
    { row: 'ID-04', input: 'spiffe://u:p@example.org', reason: TD_CHARS_MSG },
    { row: 'ID-05', input: 'spiffe://example.org:8080/a', reason: TD_CHARS_MSG },
    { row: 'ID-05', input: 'spiffe://example.org:/a', reason: TD_CHARS_MSG },
    { row: 'ID-06', input: 'spiffe://exa$mple/a', reason: TD_CHARS_MSG },
    { row: 'ID-07', input: 'spiffe://%65xample.org/a', reason: TD_CHARS_MSG },
    { row: 'ID-08', input: 'spiffe://[::1]/a', reason: TD_CHARS_MSG },
    { row: 'ID-09', input: 'spiffe://example.org/a?x=1', reason: PATH_CHARS_MSG },
    { row: 'ID-09', input: 'spiffe://example.org/a#f', reason: PATH_CHARS_MSG },
    { row: 'ID-09', input: 'spiffe://example.org?x', reason: TD_CHARS_MSG },
    { row: 'ID-09', input: 'spiffe://example.org#', reason: TD_CHARS_MSG },
    { row: 'ID-10', input: 'spiffe://example.org/%41', reason: PATH_CHARS_MSG },
    { row: 'ID-11', input: 'spiffe://example.org//', reason: 'path cannot contain empty segments' },
    { row: 'ID-11', input: 'spiffe://example.org/a//b', reason: 'path cannot contain empty segments' },
    { row: 'ID-12', input: 'spiffe://example.org/.', reason: 'path cannot contain dot segments' },
    { row: 'ID-12', input: 'spiffe://example.org/..', reason: 'path cannot contain dot segments' },
    { row: 'ID-12', input: 'spiffe://example.org/a/./b', reason: 'path cannot contain dot segments' },
    { row: 'ID-12', input: 'spiffe://example.org/a/../b', reason: 'path cannot contain dot segments' },
    { row: 'ID-13', input: 'spiffe://example.org/', reason: 'path cannot have a trailing slash' },
    { row: 'ID-13', input: 'spiffe://example.org/a/', reason: 'path cannot have a trailing slash' },
    { row: 'ID-14', input: 'spiffe://example.org/a~b', reason: PATH_CHARS_MSG },
    { row: 'ID-14', input: 'spiffe://example.org/a:b', reason: PATH_CHARS_MSG },
    { row: 'ID-14', input: 'spiffe://example.org/a@b', reason: PATH_CHARS_MSG },
    { row: 'ID-14', input: 'spiffe://example.org/a b', reason: PATH_CHARS_MSG },
    { row: 'ID-14', input: 'spiffe://example.org/ü', reason: PATH_CHARS_MSG },
    { row: 'ID-19', input: 'spiffe://例え.jp/a', reason: TD_CHARS_MSG },
    { row: 'empty', input: '', reason: 'cannot be empty' },
    { row: 'NUL', input: 'spiffe://example.org/a\u0000', reason: PATH_CHARS_MSG },
    { row: 'lone surrogate', input: 'spiffe://example.org/\ud800', reason: PATH_CHARS_MSG },
  ];
  for (const tc of rejected) {
    it(`${tc.row}: rejects ${JSON.stringify(tc.input)} with "${tc.reason}"`, () =>
      rejects(tc.input, tc.reason));
  }

  const accepted: Array<{ row: string; input: string; td: string; path: string }> = [
    { row: 'ID-06', input: 'spiffe://ex_am-ple.1/a', td: 'ex_am-ple.1', path: '/a' },
    { row: 'ID-08', input: 'spiffe://10.0.0.1/a', td: '10.0.0.1', path: '/a' },
    { row: 'ID-08', input: 'spiffe://010.0.0.1/a', td: '010.0.0.1', path: '/a' },
    { row: 'ID-12', input: 'spiffe://example.org/.a', td: 'example.org', path: '/.a' },
    { row: 'ID-12', input: 'spiffe://example.org/..a', td: 'example.org', path: '/..a' },
    { row: 'ID-12', input: 'spiffe://example.org/...', td: 'example.org', path: '/...' },
    { row: 'ID-12', input: 'spiffe://example.org/a./b..', td: 'example.org', path: '/a./b..' },
    { row: 'ID-14', input: 'spiffe://example.org/A-Z_0.9', td: 'example.org', path: '/A-Z_0.9' },
    { row: 'ID-18', input: 'spiffe://example.org', td: 'example.org', path: '' },
    { row: 'ID-19', input: 'spiffe://xn--r8jz45g.jp/a', td: 'xn--r8jz45g.jp', path: '/a' },
    { row: '§1.1 edge', input: 'spiffe://./a', td: '.', path: '/a' },
    { row: '§1.1 edge', input: 'spiffe://-/a', td: '-', path: '/a' },
    { row: '§1.1 edge', input: 'spiffe://_/a', td: '_', path: '/a' },
  ];
  for (const tc of accepted) {
    it(`${tc.row}: accepts ${JSON.stringify(tc.input)}`, () => accepts(tc.input, tc.td, tc.path));
  }

  it('ID-08: treats dotted quads as opaque names (010.0.0.1 is not 10.0.0.1)', () => {
    const a = SpiffeId.fromString('spiffe://010.0.0.1/a');
    const b = SpiffeId.fromString('spiffe://10.0.0.1/a');
    assert.equal(a.equals(b), false);
    assert.equal(a.trustDomain.equals(b.trustDomain), false);
  });

  it('ID-17: compares paths case-sensitively', () => {
    const upper = SpiffeId.fromString('spiffe://example.org/A');
    const lower = SpiffeId.fromString('spiffe://example.org/a');
    assert.equal(upper.equals(lower), false);
    assert.notEqual(upper.compare(lower), 0);
    assert.ok(upper.equals(SpiffeId.fromString('spiffe://example.org/A')));
  });

  it('ID-15: parses and round-trips an ID of exactly 2048 bytes, and generates it', () => {
    const td = TrustDomain.fromString('example.org');
    const prefix = 'spiffe://example.org/';
    const id2048 = prefix + 'a'.repeat(2048 - prefix.length);
    assert.equal(id2048.length, 2048);
    const id = SpiffeId.fromString(id2048);
    assert.equal(id.toString(), id2048);
    assert.equal(SpiffeId.fromPath(td, id.path).toString(), id2048);
  });

  it('ID-15: parses a 2049-byte ID but refuses to generate one', () => {
    const td = TrustDomain.fromString('example.org');
    const prefix = 'spiffe://example.org/';
    const id2049 = prefix + 'a'.repeat(2049 - prefix.length);
    assert.equal(SpiffeId.fromString(id2049).toString(), id2049);
    const path = id2049.slice('spiffe://example.org'.length);
    assert.throws(() => SpiffeId.fromPath(td, path), {
      code: 'ERR_SPIFFEID_INVALID',
      message: /^spiffeid: SPIFFE ID cannot be longer than 2048 bytes \(got 2049\)/,
    });
    assert.throws(() => SpiffeId.fromSegments(td, path.slice(1)), {
      code: 'ERR_SPIFFEID_INVALID',
      message: /cannot be longer than 2048 bytes/,
    });
  });

  it('ID-16: parses an ID whose trust domain exceeds 255 bytes but refuses to generate under it', () => {
    const longTd = 'a'.repeat(256);
    const id = SpiffeId.fromString(`spiffe://${longTd}/x`);
    assert.equal(id.trustDomain.name, longTd);
    assert.throws(() => SpiffeId.fromPath(id.trustDomain, '/y'), {
      code: 'ERR_SPIFFEID_INVALID',
      message: /^spiffeid: trust domain cannot be longer than 255 bytes/,
    });
  });

  it('does not accept non-strings', () => {
    assert.throws(() => SpiffeId.fromString(42 as unknown as string), TypeError);
  });

  it('quotes long offending values truncated', () => {
    const input = `https://${'x'.repeat(5000)}`;
    assert.throws(
      () => SpiffeId.fromString(input),
      (err: Error) => err.message.length < 400,
    );
  });
});

describe('SpiffeId builders', () => {
  const td = TrustDomain.fromString('example.org');

  it('builds from a path, and an empty path gives the trust domain ID', () => {
    assert.equal(SpiffeId.fromPath(td, '/ns/prod').toString(), 'spiffe://example.org/ns/prod');
    assert.equal(SpiffeId.fromPath(td, '').toString(), 'spiffe://example.org');
    assert.ok(SpiffeId.fromPath(td, '').equals(td.id()));
  });

  const badPaths: Array<{ path: string; reason: RegExp }> = [
    { path: 'a', reason: /path must have a leading slash/ },
    { path: '/', reason: /path cannot have a trailing slash/ },
    { path: '/a/', reason: /path cannot have a trailing slash/ },
    { path: '//a', reason: /path cannot contain empty segments/ },
    { path: '/a/..', reason: /path cannot contain dot segments/ },
    { path: '/a?b', reason: /path segment characters are limited/ },
  ];
  for (const tc of badPaths) {
    it(`fromPath and validatePath reject ${JSON.stringify(tc.path)}`, () => {
      assert.throws(() => SpiffeId.fromPath(td, tc.path), {
        code: 'ERR_SPIFFEID_INVALID',
        message: tc.reason,
      });
      assert.throws(() => validatePath(tc.path), { code: 'ERR_SPIFFEID_INVALID', message: tc.reason });
    });
  }

  it('validatePath accepts the empty (root) path', () => {
    validatePath('');
    validatePath('/a/b.c/-_');
  });

  it('builds from segments, validating each alone', () => {
    assert.equal(SpiffeId.fromSegments(td, 'ns', 'prod').path, '/ns/prod');
    assert.equal(SpiffeId.fromSegments(td).toString(), 'spiffe://example.org');
    assert.equal(joinPathSegments('a', 'b'), '/a/b');
    assert.throws(() => SpiffeId.fromSegments(td, 'a/b'), {
      code: 'ERR_SPIFFEID_INVALID',
      message: `spiffeid: ${PATH_CHARS_MSG}: "a/b"`,
    });
    assert.throws(() => SpiffeId.fromSegments(td, ''), {
      code: 'ERR_SPIFFEID_INVALID',
      message: 'spiffeid: path cannot contain empty segments',
    });
    assert.throws(() => SpiffeId.fromSegments(td, '..'), { message: /path cannot contain dot segments/ });
  });

  it('appends and replaces paths and segments', () => {
    const id = SpiffeId.fromString('spiffe://example.org/a');
    assert.equal(id.appendPath('/b/c').toString(), 'spiffe://example.org/a/b/c');
    assert.equal(id.appendSegments('b', 'c').toString(), 'spiffe://example.org/a/b/c');
    assert.equal(id.replacePath('/z').toString(), 'spiffe://example.org/z');
    assert.equal(id.replaceSegments('y', 'z').toString(), 'spiffe://example.org/y/z');
    assert.throws(() => id.appendPath('b'), { message: /path must have a leading slash/ });
  });

  it('refuses a non-TrustDomain argument with a TypeError', () => {
    assert.throws(() => SpiffeId.fromPath('example.org' as unknown as TrustDomain, '/a'), TypeError);
  });

  it('converts to and from URL', () => {
    const id = SpiffeId.fromString('spiffe://example.org/a/b');
    const url = id.toUrl();
    assert.equal(url.protocol, 'spiffe:');
    assert.equal(url.href, 'spiffe://example.org/a/b');
    assert.ok(SpiffeId.fromUri(url).equals(id));
    assert.throws(() => SpiffeId.fromUri(new URL('https://example.org/a')), {
      code: 'ERR_SPIFFEID_INVALID',
      message: /scheme is missing or invalid/,
    });
    assert.throws(() => SpiffeId.fromUri(new URL('spiffe://example.org/a?x=1')), {
      message: /path segment characters/,
    });
  });

  it('require parses constants and throws on bad input', () => {
    assert.equal(SpiffeId.require('spiffe://example.org/admin').path, '/admin');
    assert.throws(() => SpiffeId.require('spiffe://example.org/'), { code: 'ERR_SPIFFEID_INVALID' });
  });

  it('tells trust domain membership by exact name', () => {
    const id = SpiffeId.fromString('spiffe://example.org/a');
    assert.equal(id.memberOf(td), true);
    assert.equal(id.memberOf(TrustDomain.fromString('example.or')), false);
    assert.equal(id.memberOf(TrustDomain.fromString('example.org2')), false);
    assert.equal(SpiffeId.fromString('spiffe://example.org').memberOf(td), true);
  });

  it('serialises to a JSON string', () => {
    assert.equal(
      JSON.stringify({ id: SpiffeId.fromString('spiffe://example.org/a') }),
      '{"id":"spiffe://example.org/a"}',
    );
  });
});
