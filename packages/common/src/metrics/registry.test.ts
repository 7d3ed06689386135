import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MetricsRegistry } from './index.js';

describe('MetricsRegistry', () => {
  it('renders counters, gauges and histograms in the Prometheus text format 0.0.4', () => {
    const reg = new MetricsRegistry();
    const c = reg.counter('tessera_rpc_total', 'RPCs served', { labelNames: ['method', 'code'] });
    const g = reg.gauge('tessera_entries', 'Entries\nin cache');
    const h = reg.histogram('tessera_latency_seconds', 'Latency', { buckets: [0.1, 1] });
    c.inc({ method: 'Fetch', code: 'OK' });
    c.inc({ method: 'Fetch', code: 'OK' }, 2);
    c.inc({ method: 'a"b\\c\nd', code: 'X' });
    g.set(undefined, 7);
    g.dec();
    h.observe(undefined, 0.05);
    h.observe(undefined, 0.5);
    h.observe(undefined, 5);
    assert.equal(
      reg.render(),
      [
        '# HELP tessera_rpc_total RPCs served',
        '# TYPE tessera_rpc_total counter',
        'tessera_rpc_total{method="Fetch",code="OK"} 3',
        'tessera_rpc_total{method="a\\"b\\\\c\\nd",code="X"} 1',
        '# HELP tessera_entries Entries\\nin cache',
        '# TYPE tessera_entries gauge',
        'tessera_entries 6',
        '# HELP tessera_latency_seconds Latency',
        '# TYPE tessera_latency_seconds histogram',
        'tessera_latency_seconds_bucket{le="0.1"} 1',
        'tessera_latency_seconds_bucket{le="1"} 2',
        'tessera_latency_seconds_bucket{le="+Inf"} 3',
        'tessera_latency_seconds_sum 5.55',
        'tessera_latency_seconds_count 3',
        '',
      ].join('\n'),
    );
  });

  it('runs collect callbacks before rendering', () => {
    const reg = new MetricsRegistry();
    const g = reg.gauge('size', 'Size');
    let n = 0;
    reg.onCollect(() => g.set(undefined, ++n));
    assert.match(reg.render(), /^size 1$/m);
    assert.match(reg.render(), /^size 2$/m);
  });

  it('refuses misuse: bad names, duplicate names, wrong labels, negative counter increments', () => {
    const reg = new MetricsRegistry();
    assert.throws(() => reg.counter('bad-name', 'x'), {
      name: 'TypeError',
      message: /invalid metric name "bad-name"/,
    });
    assert.throws(() => reg.counter('x', 'x', { labelNames: ['__r'] }), TypeError);
    assert.throws(() => reg.histogram('h', 'x', { labelNames: ['le'] }), TypeError);
    assert.throws(() => reg.histogram('h2', 'x', { buckets: [1, 1] }), TypeError);
    const c = reg.counter('c', 'x', { labelNames: ['a'] });
    assert.throws(() => reg.gauge('c', 'x'), { message: /already registered/ });
    assert.throws(() => c.inc({ b: '1' }), { message: /takes labels \[a\], got \[b\]/ });
    assert.throws(() => c.inc(), TypeError);
    assert.throws(() => c.inc({ a: '1' }, -1), RangeError);
    assert.throws(() => c.inc({ a: '1', b: '2' }), { message: /got \[a, b\]/ });
    const plain = reg.counter('plain', 'x');
    assert.throws(() => plain.inc({ a: '1' }), { message: /takes labels \[\], got \[a\]/ });
    const two = reg.counter('two', 'x', { labelNames: ['a', 'b'] });
    assert.throws(() => two.inc({ a: '1', c: '2' }), TypeError);
    assert.throws(() => two.inc({ a: '1' }), TypeError);
    assert.throws(() => two.inc(Object.create({ a: '1', b: '2' })), TypeError);
  });

  it('keeps one series per label values, in first-use order, whatever the order of the label keys', () => {
    const reg = new MetricsRegistry();
    const c = reg.counter('calls', 'x', { labelNames: ['method', 'code'] });
    c.inc({ method: 'Fetch', code: 'OK' });
    c.inc({ code: 'OK', method: 'Fetch' }, 2);
    c.inc({ method: 'Fetch', code: 'CANCELLED' });
    // Values that a joined key string would confuse stay apart.
    c.inc({ method: 'a","b', code: 'c' });
    c.inc({ method: 'a', code: 'b","c' });
    assert.equal(c.value({ method: 'Fetch', code: 'OK' }), 3);
    assert.deepEqual(
      reg
        .render()
        .split('\n')
        .filter((l) => l.startsWith('calls{')),
      [
        'calls{method="Fetch",code="OK"} 3',
        'calls{method="Fetch",code="CANCELLED"} 1',
        'calls{method="a\\",\\"b",code="c"} 1',
        'calls{method="a",code="b\\",\\"c"} 1',
      ],
    );
    c.reset();
    assert.equal(c.value({ method: 'Fetch', code: 'OK' }), 0);
    const u = reg.counter('unlabelled', 'x');
    u.inc();
    u.inc({});
    assert.equal(u.value(), 2);
    u.reset();
    assert.equal(u.value(), 0);
  });
});
