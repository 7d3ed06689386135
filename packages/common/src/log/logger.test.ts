import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { createLogger, formatTextLine, LogFields } from './index.js';

function capture(format: 'json' | 'text' = 'json', level: 'debug' | 'info' = 'info') {
  const lines: string[] = [];
  const log = createLogger({ level, format, destination: { write: (l: string) => lines.push(l) } });
  return { log, lines, text: () => lines.join('') };
}

const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
  type: 'pkcs8',
  format: 'pem',
}) as string;
const JOIN_TOKEN = '3f1c2d9a-7b44-4e0f-9d1e-5a6b7c8d9e0f';
const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy93In0.c2lnbmF0dXJlLWJ5dGVz';

describe('createLogger', () => {
  it('never writes a join token or a PEM private key passed in fields, messages, bindings or errors', () => {
    const { log, text } = capture('json', 'debug');
    const child = log.child({ [LogFields.subsystem]: 'agent', join_token: JOIN_TOKEN });
    child.info(
      { joinToken: JOIN_TOKEN, nested: { deeper: { privateKey: pem } }, note: `key is ${pem}` },
      'Attesting',
    );
    child.debug({ request: { headers: { Authorization: `Bearer ${JWT}` } } }, 'Call');
    child.warn({ detail: `token ${JWT} was refused` }, `token ${JWT}`);
    child.error({ err: new Error(`failed with ${pem}`) }, 'Failure');
    child.info({ csr: Buffer.from('csr-bytes'), svid: [Buffer.from('der')] }, 'Signed');
    child.info({ list: [{ password: 'p4ssw0rd' }] }, `pem ${pem}`);
    const out = text();
    assert.ok(out.length > 0);
    assert.doesNotMatch(out, new RegExp(JOIN_TOKEN));
    assert.doesNotMatch(out, /PRIVATE KEY|MIG/);
    assert.doesNotMatch(out, /eyJhbGciOiJFUzI1NiJ9/);
    assert.doesNotMatch(out, /p4ssw0rd|csr-bytes/);
    assert.match(out, /\[redacted\]/);
  });

  it('keeps ordinary fields and child bindings', () => {
    const { log, lines } = capture();
    log
      .child({ [LogFields.subsystem]: 'ca' })
      .child({ [LogFields.method]: '/x.Y/Z' })
      .info({ [LogFields.spiffeId]: 'spiffe://example.org/w', [LogFields.pid]: 42 }, 'Issued');
    const o = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    assert.equal(o.level, 'info');
    assert.equal(o.msg, 'Issued');
    assert.equal(o.subsystem, 'ca');
    assert.equal(o.method, '/x.Y/Z');
    assert.equal(o.spiffe_id, 'spiffe://example.org/w');
    assert.equal(o.pid, 42);
    assert.equal(typeof o.time, 'number');
  });

  it('serializes errors under err with type, message, code and cause', () => {
    const { log, lines } = capture();
    const err = Object.assign(new TypeError('outer', { cause: new Error('inner') }), { code: 'ERR_X' });
    log.error({ err }, 'Failed');
    const o = JSON.parse(lines[0] ?? '') as { err: Record<string, unknown> };
    assert.equal(o.err.type, 'TypeError');
    assert.equal(o.err.message, 'outer');
    assert.equal(o.err.code, 'ERR_X');
    assert.equal((o.err.cause as Record<string, unknown>).message, 'inner');
  });

  it('filters by level', () => {
    const { log, lines } = capture('json', 'info');
    log.debug('hidden');
    log.info('shown');
    assert.equal(lines.length, 1);
  });

  it('writes text lines when asked', () => {
    const { log, lines } = capture('text');
    log.warn({ a: 1, b: 'two words' }, 'Something happened');
    assert.match(lines[0] ?? '', /^\d{4}-\d\d-\d\dT[\d:.]+Z WARN Something happened a=1 b="two words"\n$/);
    assert.equal(
      formatTextLine('{"level":30,"time":0,"msg":"Started"}'),
      '1970-01-01T00:00:00.000Z INFO Started',
    );
  });
});
