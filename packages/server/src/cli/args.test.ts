import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CliUsageError, type FlagSpec, parseFlags } from './args.js';

const SPECS: readonly FlagSpec[] = [
  { name: 'spiffe-id', aliases: ['spiffeID'], kind: 'string', description: '' },
  { name: 'selector', kind: 'strings', description: '' },
  { name: 'admin', kind: 'bool', description: '' },
];

describe('parseFlags', () => {
  const ok = [
    { name: 'reads --flag value', argv: ['--spiffe-id', 'x'], id: 'x' },
    { name: 'reads --flag=value', argv: ['--spiffe-id=x'], id: 'x' },
    { name: "reads SPIRE's single-dash spelling", argv: ['-spiffeID', 'x'], id: 'x' },
    { name: 'reads the alias with two dashes', argv: ['--spiffeID=x'], id: 'x' },
    { name: 'keeps "=" inside the value', argv: ['--spiffe-id=a=b'], id: 'a=b' },
  ];
  for (const tc of ok) {
    it(tc.name, () => {
      assert.equal(parseFlags(SPECS, tc.argv, 'cmd').strings.get('spiffe-id'), tc.id);
    });
  }

  it('collects repeatable flags in order', () => {
    const f = parseFlags(SPECS, ['--selector', 'a:1', '-selector', 'b:2', '--selector=c:3'], 'cmd');
    assert.deepEqual(f.lists.get('selector'), ['a:1', 'b:2', 'c:3']);
  });

  const bools = [
    { argv: ['--admin'], want: true },
    { argv: ['--admin=true'], want: true },
    { argv: ['--admin=false'], want: false },
    { argv: ['-admin=0'], want: false },
  ];
  for (const tc of bools) {
    it(`reads ${tc.argv.join(' ')} as ${tc.want}`, () => {
      assert.equal(parseFlags(SPECS, tc.argv, 'cmd').bools.get('admin'), tc.want);
    });
  }

  it('does not let a boolean swallow the next argument', () => {
    const f = parseFlags(SPECS, ['--admin', 'extra'], 'cmd');
    assert.deepEqual(f.positionals, ['extra']);
  });

  it('treats everything after -- as positional', () => {
    assert.deepEqual(parseFlags(SPECS, ['--', '--admin'], 'cmd').positionals, ['--admin']);
  });

  const bad = [
    { name: 'rejects an unknown flag', argv: ['--nope', 'x'], msg: /^cmd: unknown flag "--nope"$/ },
    {
      name: 'rejects a flag without its value',
      argv: ['--spiffe-id'],
      msg: /^cmd: --spiffe-id needs a value$/,
    },
    {
      name: 'rejects a single-value flag given twice',
      argv: ['--spiffe-id', 'a', '-spiffeID', 'b'],
      msg: /given more than once/,
    },
    {
      name: 'rejects a malformed boolean',
      argv: ['--admin=maybe'],
      msg: /--admin takes true or false, got "maybe"/,
    },
  ];
  for (const tc of bad) {
    it(tc.name, () => {
      assert.throws(
        () => parseFlags(SPECS, tc.argv, 'cmd'),
        (err: unknown) =>
          err instanceof CliUsageError && err.code === 'ERR_CLI_USAGE' && tc.msg.test(err.message),
      );
    });
  }

  it('refuses specs that declare a name twice (programmer error)', () => {
    assert.throws(
      () => parseFlags([...SPECS, { name: 'spiffeID', kind: 'bool', description: '' }], [], 'cmd'),
      TypeError,
    );
  });
});
