import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Duration, parseByteSize, parseFileMode } from './values.js';

describe('Duration', () => {
  const good: [string, number][] = [
    ['1h', 3_600_000],
    ['90s', 90_000],
    ['720h', 2_592_000_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['1.5h', 5_400_000],
    ['2d', 172_800_000],
    ['0', 0],
    ['0s', 0],
  ];
  for (const [text, ms] of good) {
    it(`parses "${text}"`, () => assert.equal(Duration.parse(text)?.milliseconds, ms));
  }
  for (const text of ['', '1', 'h', '1 h', '-1h', '1H', '1hour', '1h-5m', '1e3s', ' 1h', '1h ', '1y']) {
    it(`rejects ${JSON.stringify(text)}`, () => assert.equal(Duration.parse(text), undefined));
  }
  it('prints the canonical form', () => {
    assert.equal(Duration.parse('90m')?.toString(), '1h30m');
    assert.equal(Duration.fromMilliseconds(1500).toString(), '1s500ms');
    assert.equal(Duration.fromSeconds(0).toString(), '0s');
    assert.equal(JSON.stringify({ d: Duration.parse('24h') }), '{"d":"24h"}');
  });
  it('refuses negative milliseconds as programmer misuse', () => {
    assert.throws(() => Duration.fromMilliseconds(-1), RangeError);
  });
});

describe('parseByteSize', () => {
  const cases: [string | number, number | undefined][] = [
    [1024, 1024],
    ['512', 512],
    ['64KiB', 65536],
    ['10MB', 10_000_000],
    ['1.5GiB', 1610612736],
    ['1 mib', 1048576],
    [-1, undefined],
    [1.5, undefined],
    ['10 parsecs', undefined],
    ['MB', undefined],
  ];
  for (const [input, want] of cases) {
    it(`reads ${JSON.stringify(input)} as ${want}`, () => assert.equal(parseByteSize(input), want));
  }
});

describe('parseFileMode', () => {
  const cases: [string, number | undefined][] = [
    ['0700', 0o700],
    ['700', 0o700],
    ['0o644', 0o644],
    ['4755', 0o4755],
    ['0800', undefined],
    ['rwx', undefined],
    ['07777', 0o7777],
    ['077777', undefined],
    ['', undefined],
  ];
  for (const [input, want] of cases) {
    it(`reads ${JSON.stringify(input)} as ${want === undefined ? 'invalid' : want.toString(8)}`, () =>
      assert.equal(parseFileMode(input), want));
  }
});
