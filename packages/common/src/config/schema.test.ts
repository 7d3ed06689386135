import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  array,
  boolean,
  byteSize,
  Duration,
  duration,
  enumOf,
  fileMode,
  host,
  integer,
  object,
  port,
  REDACTED,
  record,
  redactConfig,
  socketPath,
  spiffeId,
  string,
  trustDomain,
  url,
  validate,
  variant,
} from './index.js';

const schema = object({
  trustDomain: trustDomain(),
  bindPort: port().default(8081),
  ttl: duration({ min: '1s' }).defaultRaw('1h'),
  level: enumOf(['debug', 'info'] as const, { ignoreCase: true }).default('info'),
  token: string().secret().optional(),
  section: object({ enabled: boolean().default(false), size: byteSize().optional() }).defaultRaw({}),
  ids: array(spiffeId()).optional(),
  mode: fileMode().optional(),
  endpoint: url({ schemes: ['https'] }).optional(),
  sock: socketPath().optional(),
  addr: host().optional(),
  count: integer({ min: 1, max: 10 }).optional(),
  profile: variant({ web: object({}), spiffe: object({ id: spiffeId() }) }).optional(),
  peers: record(object({ port: port() }), { keyType: 'trust domain' }).optional(),
});

function errors(raw: unknown): { path: string; message: string }[] {
  const r = validate(schema, raw);
  assert.equal(r.ok, false, 'expected validation to fail');
  return r.issues.filter((i) => i.severity === 'error').map(({ path, message }) => ({ path, message }));
}

describe('config schema', () => {
  it('applies defaults and converts to domain types', () => {
    const r = validate(schema, {
      trust_domain: 'example.org',
      ids: ['spiffe://example.org/a'],
      mode: '0750',
    });
    assert.ok(r.ok);
    assert.equal(r.value.trustDomain.name, 'example.org');
    assert.equal(r.value.bindPort, 8081);
    assert.ok(r.value.ttl.equals(Duration.parse('1h')));
    assert.equal(r.value.level, 'info');
    assert.deepEqual(r.value.section, { enabled: false });
    assert.equal(r.value.ids?.[0]?.toString(), 'spiffe://example.org/a');
    assert.equal(r.value.mode, 0o750);
    assert.equal('token' in r.value, false, 'absent optional keys are omitted');
    assert.ok(Object.isFrozen(r.value));
  });

  it('collects every problem at once, with paths', () => {
    const errs = errors({
      trust_domain: 'Bad.Org',
      bind_port: 70000,
      ttl: '10x',
      level: 'trace',
      section: { enabled: 'yes', size: '1 parsec' },
      ids: ['spiffe://example.org/ok', 'not-an-id'],
      count: 11,
    });
    assert.deepEqual(
      errs.map((e) => e.path),
      ['trust_domain', 'bind_port', 'ttl', 'level', 'section.enabled', 'section.size', 'ids[1]', 'count'],
    );
    assert.match(errs[1]?.message ?? '', /must be at most 65535, got 70000/);
    assert.match(errs[2]?.message ?? '', /must be a duration .*got "10x"/);
    assert.match(errs[3]?.message ?? '', /must be one of "debug", "info", got "trace"/);
  });

  it('names unknown keys with their section and suggests the closest key', () => {
    const errs = errors({ trust_domain: 'example.org', bind_prot: 1, section: { enabeld: true, zzz: 1 } });
    assert.deepEqual(
      errs.map((e) => e.path),
      ['bind_prot', 'section.enabeld', 'section.zzz'],
    );
    assert.match(
      errs[0]?.message ?? '',
      /^unknown key "bind_prot" in top level \(did you mean "bind_port"\?\)/,
    );
    assert.match(
      errs[1]?.message ?? '',
      /^unknown key "enabeld" in section "section" \(did you mean "enabled"\?\)/,
    );
    assert.match(
      errs[2]?.message ?? '',
      /^unknown key "zzz" in section "section"; known keys: enabled, size$/,
    );
  });

  const wrongTypes: { name: string; raw: Record<string, unknown>; path: string; message: RegExp }[] = [
    {
      name: 'a number for a trust domain',
      raw: { trust_domain: 5 },
      path: 'trust_domain',
      message: /must be a trust domain name string, got number 5/,
    },
    {
      name: 'a SPIFFE ID for a trust domain',
      raw: { trust_domain: 'spiffe://example.org' },
      path: 'trust_domain',
      message: /not a SPIFFE ID/,
    },
    {
      name: 'a string for a port',
      raw: { bind_port: '8081' },
      path: 'bind_port',
      message: /must be an integer, got "8081"/,
    },
    {
      name: 'a fraction for a port',
      raw: { bind_port: 80.5 },
      path: 'bind_port',
      message: /must be an integer/,
    },
    { name: 'port zero', raw: { bind_port: 0 }, path: 'bind_port', message: /must be at least 1, got 0/ },
    {
      name: 'a number for a duration',
      raw: { ttl: 3600 },
      path: 'ttl',
      message: /must be a duration string/,
    },
    {
      name: 'a duration below the minimum',
      raw: { ttl: '500ms' },
      path: 'ttl',
      message: /must be at least 1s/,
    },
    { name: 'a negative duration', raw: { ttl: '-1h' }, path: 'ttl', message: /must be a duration such as/ },
    {
      name: 'a duration without unit',
      raw: { ttl: '90' },
      path: 'ttl',
      message: /must be a duration such as/,
    },
    { name: 'a list for a section', raw: { section: [] }, path: 'section', message: /must be a section/ },
    { name: 'a section for a list', raw: { ids: {} }, path: 'ids', message: /must be a list, got a section/ },
    { name: 'a numeric file mode', raw: { mode: 700 }, path: 'mode', message: /octal file mode in quotes/ },
    {
      name: 'an http URL where https is required',
      raw: { endpoint: 'http://a.org/' },
      path: 'endpoint',
      message: /must use scheme "https", got "http"/,
    },
    {
      name: 'a URL with a password',
      raw: { endpoint: 'https://u:p@a.org/' },
      path: 'endpoint',
      message: /user information/,
    },
    {
      name: 'a unix: URL for a socket path',
      raw: { sock: 'unix:///tmp/s' },
      path: 'sock',
      message: /without the "unix:" scheme/,
    },
    {
      name: 'a socket path over 107 bytes',
      raw: { sock: `/${'a'.repeat(107)}` },
      path: 'sock',
      message: /at most 107 bytes/,
    },
    { name: 'a host with a space', raw: { addr: 'a b' }, path: 'addr', message: /IP address or host name/ },
    {
      name: 'two variant options',
      raw: { profile: { web: {}, spiffe: { id: 'spiffe://a/b' } } },
      path: 'profile',
      message: /exactly one of web, spiffe, got web and spiffe/,
    },
    {
      name: 'no variant option',
      raw: { profile: {} },
      path: 'profile',
      message: /must set exactly one of web, spiffe/,
    },
    {
      name: 'an unknown variant option',
      raw: { profile: { ftp: {} } },
      path: 'profile.ftp',
      message: /unknown key "ftp" in section "profile"; known options: web, spiffe/,
    },
    {
      name: 'a bad record entry',
      raw: { peers: { 'a.org': { port: -1 } } },
      path: 'peers["a.org"].port',
      message: /at least 1/,
    },
  ];
  for (const tc of wrongTypes) {
    it(`rejects ${tc.name}`, () => {
      const errs = errors({ trust_domain: 'example.org', ...tc.raw });
      assert.equal(errs.length, 1, JSON.stringify(errs));
      assert.equal(errs[0]?.path, tc.path);
      assert.match(errs[0]?.message ?? '', tc.message);
    });
  }

  it('reports a missing required key', () => {
    assert.deepEqual(errors({}), [{ path: 'trust_domain', message: 'is required' }]);
  });

  it('never quotes a secret value in messages', () => {
    const errs = errors({ trust_domain: 'example.org', token: 12345678 });
    assert.equal(errs[0]?.path, 'token');
    assert.doesNotMatch(errs[0]?.message ?? '', /12345678/);
  });

  it('treats a key with nothing under it as an empty section', () => {
    const r = validate(schema, { trust_domain: 'example.org', section: null, profile: { web: null } });
    assert.ok(r.ok);
    assert.deepEqual(r.value.profile, { type: 'web', config: {} });
  });

  it('accepts case-insensitive enums and returns the canonical spelling', () => {
    const r = validate(schema, { trust_domain: 'example.org', level: 'DEBUG' });
    assert.ok(r.ok);
    assert.equal(r.value.level, 'debug');
  });

  it('converts strings only for keys that came from the environment or flags', () => {
    const origins = new Map([
      ['bind_port', 'flag --bind-port'],
      ['section.enabled', 'environment variable X'],
    ]);
    const ok = validate(
      schema,
      { trust_domain: 'example.org', bind_port: '9000', section: { enabled: 'true' } },
      { origins },
    );
    assert.ok(ok.ok);
    assert.equal(ok.value.bindPort, 9000);
    assert.equal(ok.value.section.enabled, true);
    const bad = validate(schema, { trust_domain: 'example.org', bind_port: 'x' }, { origins });
    assert.equal(bad.ok, false);
    assert.equal(bad.issues[0]?.message, 'must be an integer, got "x" (from flag --bind-port)');
  });

  it('runs checks and reports warnings without rejecting', () => {
    const s = object({ a: integer() }).check((v, r) => {
      if (v.a > 5) r.warn('is large', ['a']);
      if (v.a > 10) r.error('is too large', ['a']);
    });
    const w = validate(s, { a: 7 });
    assert.ok(w.ok);
    assert.deepEqual(w.issues, [{ path: 'a', message: 'is large', severity: 'warning' }]);
    const e = validate(s, { a: 11 });
    assert.equal(e.ok, false);
    assert.deepEqual(
      e.issues.map((i) => i.severity),
      ['warning', 'error'],
    );
  });

  describe('checkFields', () => {
    const s = object({ lo: integer(), hi: integer(), name: string() })
      .checkFields(['lo', 'hi'], (v, r) => {
        if (v.lo >= v.hi) r.error('must be below hi', ['lo']);
      })
      .check(() => {
        throw new Error('a whole-value check must not run on an invalid section');
      });
    const cases: readonly {
      name: string;
      raw: Record<string, unknown>;
      issues: readonly { path: string; message: RegExp }[];
    }[] = [
      {
        name: 'runs beside an error in a field it does not read',
        raw: { lo: 5, hi: 1, name: 7 },
        issues: [
          { path: 'name', message: /must be a string/ },
          { path: 'lo', message: /^must be below hi$/ },
        ],
      },
      {
        name: 'runs beside an unknown key',
        raw: { lo: 5, hi: 1, name: 'x', nmae: 'y' },
        issues: [
          { path: 'nmae', message: /unknown key "nmae"/ },
          { path: 'lo', message: /^must be below hi$/ },
        ],
      },
      {
        name: 'is skipped when a field it reads is invalid',
        raw: { lo: 5, hi: 'x', name: 7 },
        issues: [
          { path: 'hi', message: /must be an integer/ },
          { path: 'name', message: /must be a string/ },
        ],
      },
    ];
    for (const tc of cases) {
      it(tc.name, () => {
        const r = validate(s, tc.raw);
        assert.equal(r.ok, false);
        assert.equal(r.issues.length, tc.issues.length, JSON.stringify(r.issues));
        tc.issues.forEach((want, i) => {
          assert.equal(r.issues[i]?.path, want.path);
          assert.match(r.issues[i]?.message ?? '', want.message);
          assert.equal(r.issues[i]?.severity, 'error');
        });
      });
    }

    it('runs with the whole-value checks when every field is valid', () => {
      const ok = object({ lo: integer(), hi: integer() }).checkFields(['lo', 'hi'], (v, r) => {
        if (v.lo >= v.hi) r.error('must be below hi', ['lo']);
      });
      assert.deepEqual(validate(ok, { lo: 1, hi: 2 }), { ok: true, value: { lo: 1, hi: 2 }, issues: [] });
      const bad = validate(ok, { lo: 3, hi: 2 });
      assert.deepEqual(bad, {
        ok: false,
        issues: [{ path: 'lo', message: 'must be below hi', severity: 'error' }],
      });
    });

    it('refuses a schema that is not a section', () => {
      assert.throws(() => integer().checkFields([], () => {}), {
        name: 'TypeError',
        message: /checkFields\(\) applies to object\(\) schemas only/,
      });
    });
  });

  it('redacts secrets for logging and renders domain types as text', () => {
    const r = validate(schema, {
      trust_domain: 'example.org',
      token: 'hunter2',
      peers: { 'a.org': { port: 1 } },
    });
    assert.ok(r.ok);
    const red = redactConfig(schema, r.value) as Record<string, unknown>;
    assert.equal(red.token, REDACTED);
    assert.equal(red.trust_domain, 'example.org');
    assert.equal(red.ttl, '1h');
    assert.deepEqual(red.peers, { 'a.org': { port: 1 } });
    assert.doesNotMatch(JSON.stringify(red), /hunter2/);
  });
});
