import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  applyOverrides,
  ConfigValidationError,
  envOverrides,
  flagOverrides,
  loadRawConfig,
  parseConfigText,
  readConfigFile,
} from './index.js';

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigValidationError);
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    return err.issues.map((i) => i.message);
  }
  assert.fail('expected a ConfigValidationError');
}

describe('parseConfigText', () => {
  it('parses YAML and JSON', () => {
    assert.deepEqual(parseConfigText('a: 1\nb:\n  c: [x, y]\n'), { a: 1, b: { c: ['x', 'y'] } });
    assert.deepEqual(parseConfigText('{"a": {"b": true}}'), { a: { b: true } });
    assert.deepEqual(parseConfigText(''), {});
  });

  it('reads YAML 1.2 scalars: yes stays a string, 0700 is decimal', () => {
    assert.deepEqual(parseConfigText('a: yes\nb: 0700\n'), { a: 'yes', b: 700 });
  });

  it('rejects a duplicate key with its line and column', () => {
    assert.deepEqual(
      issuesOf(() => parseConfigText('trust_domain: a.org\nbind_port: 1\ntrust_domain: b.org\n')),
      ['yaml: line 3, column 1: duplicate key "trust_domain"'],
    );
  });

  it('rejects a duplicate key in JSON', () => {
    const msgs = issuesOf(() => parseConfigText('{"a": 1,\n "a": 2}'));
    assert.equal(msgs.length, 1);
    assert.match(msgs[0] ?? '', /^json: line 2, column 2: duplicate key "a"/);
  });

  it('gives the line and column of a syntax error without quoting the content', () => {
    const msgs = issuesOf(() => parseConfigText('a: 1\njoin_token: [s3cr3t-token\n'));
    assert.ok(msgs.length >= 1);
    assert.match(msgs[0] ?? '', /^yaml: line \d+, column \d+: /);
    for (const m of msgs) assert.doesNotMatch(m, /s3cr3t/);
  });

  it('rejects several documents and unknown tags', () => {
    assert.match(issuesOf(() => parseConfigText('a: 1\n---\nb: 2\n'))[0] ?? '', /several documents/);
    assert.match(
      issuesOf(() => parseConfigText('a: !vault secret\n'))[0] ?? '',
      /^yaml: line 1, column 4: unresolved tag/,
    );
  });

  it('names the source file in the error message', () => {
    assert.throws(() => parseConfigText('a: 1\na: 2\n', { source: 'server.yaml' }), {
      code: 'ERR_CONFIG_INVALID',
      message:
        /^config: 1 problem in "server\.yaml":\n {2}\(document\): yaml: line 2, column 1: duplicate key "a"$/,
    });
  });
});

describe('overrides', () => {
  it('maps prefixed environment variables to keys, nested with a double underscore', () => {
    const o = envOverrides(
      {
        TESSERA_SERVER_LOG_LEVEL: 'debug',
        TESSERA_SERVER_HEALTH_CHECKS__BIND_PORT: '9',
        OTHER: 'x',
        TESSERA_SERVER_: 'y',
      },
      'TESSERA_SERVER_',
    );
    assert.deepEqual(o, [
      {
        path: ['health_checks', 'bind_port'],
        value: '9',
        origin: 'environment variable TESSERA_SERVER_HEALTH_CHECKS__BIND_PORT',
      },
      { path: ['log_level'], value: 'debug', origin: 'environment variable TESSERA_SERVER_LOG_LEVEL' },
    ]);
  });

  it('applies overrides to a copy, later ones winning, and records their origins', () => {
    const file = { log_level: 'info', health_checks: { bind_port: 1 } };
    const r = applyOverrides(file, [
      ...envOverrides({ T_LOG_LEVEL: 'warn', T_METRICS__BIND_PORT: '9000' }, 'T_'),
      ...flagOverrides({ log_level: 'debug', 'health_checks.bind_port': '2', skipped: undefined }),
    ]);
    assert.deepEqual(r.raw, {
      log_level: 'debug',
      health_checks: { bind_port: '2' },
      metrics: { bind_port: '9000' },
    });
    assert.deepEqual(file, { log_level: 'info', health_checks: { bind_port: 1 } });
    assert.equal(r.origins.get('log_level'), 'flag --log-level');
    assert.equal(r.origins.get('metrics.bind_port'), 'environment variable T_METRICS__BIND_PORT');
  });

  it('reports an override whose parent is not a section', () => {
    const r = applyOverrides({ log_level: 'info' }, flagOverrides({ 'log_level.x': '1' }));
    assert.deepEqual(r.issues, [
      {
        path: 'log_level',
        message: 'cannot apply flag --log-level.x: "log_level" is not a section',
        severity: 'error',
      },
    ]);
  });
});

describe('reading files', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads .json as JSON and .yaml as YAML', async () => {
    await writeFile(join(dir, 'a.json'), '{"a": 1}');
    await writeFile(join(dir, 'a.yaml'), '\ufeffa: 2\n');
    assert.deepEqual(await readConfigFile(join(dir, 'a.json')), { a: 1 });
    assert.deepEqual(await readConfigFile(join(dir, 'a.yaml')), { a: 2 });
  });

  it('refuses YAML syntax in a .json file', async () => {
    await writeFile(join(dir, 'b.json'), 'a: 1\n');
    await assert.rejects(readConfigFile(join(dir, 'b.json')), {
      code: 'ERR_CONFIG_INVALID',
      message: /json: line 1/,
    });
  });

  it('reports a missing file with its errno code', async () => {
    await assert.rejects(readConfigFile(join(dir, 'missing.yaml')), {
      code: 'ERR_CONFIG_INVALID',
      message: /missing\.yaml.*cannot read the file \(ENOENT\)/s,
    });
  });

  it('refuses a file that is not UTF-8', async () => {
    await writeFile(join(dir, 'c.yaml'), Buffer.from([0x61, 0x3a, 0x20, 0xff, 0xfe]));
    await assert.rejects(readConfigFile(join(dir, 'c.yaml')), {
      code: 'ERR_CONFIG_INVALID',
      message: /not valid UTF-8/,
    });
  });

  it('loads a file then the environment then flags', async () => {
    await writeFile(join(dir, 'd.yaml'), 'log_level: info\nbind_port: 1\n');
    const r = await loadRawConfig({
      configPath: join(dir, 'd.yaml'),
      env: { X_LOG_LEVEL: 'warn', X_BIND_PORT: '2' },
      envPrefix: 'X_',
      flags: { bind_port: '3' },
    });
    assert.deepEqual(r.raw, { log_level: 'warn', bind_port: '3' });
    assert.equal(r.source, join(dir, 'd.yaml'));
  });
});
