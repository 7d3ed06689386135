import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  parseEndpointAddress,
  resolveEndpointAddress,
  SPIFFE_ENDPOINT_SOCKET,
  WorkloadApiClient,
} from '@tessera/spiffe/workloadapi';

const P = 'workloadapi: workload endpoint';

describe('parseEndpointAddress', () => {
  const valid: { name: string; addr: string; target: string; extra: Record<string, unknown> }[] = [
    {
      name: 'accepts a unix URI with an absolute path',
      addr: 'unix:///tmp/agent.sock',
      target: 'unix:///tmp/agent.sock',
      extra: { network: 'unix', socketPath: '/tmp/agent.sock' },
    },
    {
      name: 'accepts a unix URI without authority written as unix:/path',
      addr: 'unix:/run/spire/agent.sock',
      target: 'unix:///run/spire/agent.sock',
      extra: { network: 'unix', socketPath: '/run/spire/agent.sock' },
    },
    {
      name: 'decodes percent-encoding in a unix path',
      addr: 'unix:///tmp/my%20agent.sock',
      target: 'unix:///tmp/my agent.sock',
      extra: { socketPath: '/tmp/my agent.sock' },
    },
    {
      name: 'matches the scheme case-insensitively',
      addr: 'UNIX:///tmp/agent.sock',
      target: 'unix:///tmp/agent.sock',
      extra: {},
    },
    {
      name: 'accepts a tcp URI with an IPv4 literal and port',
      addr: 'tcp://1.2.3.4:5',
      target: '1.2.3.4:5',
      extra: { network: 'tcp', host: '1.2.3.4', port: 5 },
    },
    {
      name: 'accepts a tcp URI with an IPv6 literal and re-brackets it',
      addr: 'tcp://[::1]:8000',
      target: '[::1]:8000',
      extra: { network: 'tcp', host: '::1', port: 8000 },
    },
  ];
  for (const tc of valid) {
    it(tc.name, () => {
      const a = parseEndpointAddress(tc.addr);
      assert.equal(a.target, tc.target);
      for (const [k, v] of Object.entries(tc.extra))
        assert.equal((a as unknown as Record<string, unknown>)[k], v);
    });
  }

  const invalid: { name: string; addr: string; message: string }[] = [
    // §2.8: the spec forbids an authority; go-spiffe accepts unix://foo.
    {
      name: 'rejects a unix URI with an authority (spec, unlike go-spiffe)',
      addr: 'unix://foo',
      message: `${P} unix socket URI must not include an authority`,
    },
    {
      name: 'rejects a unix URI with a host and a path',
      addr: 'unix://host/x',
      message: `${P} unix socket URI must not include an authority`,
    },
    {
      name: 'rejects an opaque unix URI',
      addr: 'unix:opaque',
      message: `${P} unix socket URI must not be opaque`,
    },
    {
      name: 'rejects a unix URI without a path',
      addr: 'unix://',
      message: `${P} unix socket URI must include a path`,
    },
    {
      name: 'rejects a unix URI whose path is the root',
      addr: 'unix:///',
      message: `${P} unix socket URI must include a path`,
    },
    {
      name: 'rejects a unix URI with a query',
      addr: 'unix://foo?x',
      message: `${P} unix socket URI must not include query values`,
    },
    {
      name: 'rejects a unix URI with a fragment',
      addr: 'unix://foo#x',
      message: `${P} unix socket URI must not include a fragment`,
    },
    {
      name: 'rejects a unix URI with an absolute path and a query',
      addr: 'unix:///tmp/a.sock?x=1',
      message: `${P} unix socket URI must not include query values`,
    },
    {
      name: 'rejects a unix URI with user info',
      addr: 'unix://u:p@foo/p',
      message: `${P} unix socket URI must not include user info`,
    },
    {
      name: 'rejects bad percent-encoding in a unix path',
      addr: 'unix:///tmp/%zz',
      message: `${P} unix socket URI path has invalid percent-encoding`,
    },
    {
      name: 'rejects an opaque tcp URI',
      addr: 'tcp:opaque',
      message: `${P} tcp socket URI must not be opaque`,
    },
    {
      name: 'rejects a tcp URI without a host',
      addr: 'tcp://',
      message: `${P} tcp socket URI must include a host`,
    },
    {
      name: 'rejects a tcp URI with a path',
      addr: 'tcp://1.2.3.4:5/path',
      message: `${P} tcp socket URI must not include a path`,
    },
    {
      name: 'rejects a tcp URI with a query',
      addr: 'tcp://1.2.3.4:5?x',
      message: `${P} tcp socket URI must not include query values`,
    },
    {
      name: 'rejects a tcp URI with a fragment',
      addr: 'tcp://1.2.3.4:5#x',
      message: `${P} tcp socket URI must not include a fragment`,
    },
    {
      name: 'rejects a tcp URI with user info',
      addr: 'tcp://u:p@1.2.3.4:5',
      message: `${P} tcp socket URI must not include user info`,
    },
    {
      name: 'rejects a tcp URI with a host name',
      addr: 'tcp://foo:5',
      message: `${P} tcp socket URI host component must be an IP:port`,
    },
    {
      name: 'rejects a tcp URI with localhost',
      addr: 'tcp://localhost:8000',
      message: `${P} tcp socket URI host component must be an IP:port`,
    },
    {
      name: 'rejects a tcp URI without a port',
      addr: 'tcp://1.2.3.4',
      message: `${P} tcp socket URI host component must include a port`,
    },
    {
      name: 'rejects a tcp URI with an empty port',
      addr: 'tcp://1.2.3.4:',
      message: `${P} tcp socket URI host component must include a port`,
    },
    {
      name: 'rejects a tcp URI with port 0',
      addr: 'tcp://1.2.3.4:0',
      message: `${P} tcp socket URI port must be a number from 1 to 65535`,
    },
    {
      name: 'rejects a tcp URI with a port above 65535',
      addr: 'tcp://1.2.3.4:65536',
      message: `${P} tcp socket URI port must be a number from 1 to 65535`,
    },
    {
      name: 'rejects an unbracketed IPv6 tcp host',
      addr: 'tcp://::1:5',
      message: `${P} tcp socket URI host component must be an IP:port`,
    },
    {
      name: 'rejects an IPv4 literal with leading zeros',
      addr: 'tcp://010.0.0.1:5',
      message: `${P} tcp socket URI host component must be an IP:port`,
    },
    {
      name: 'rejects an address without a scheme',
      addr: 'blah',
      message: `${P} socket URI must have a "tcp" or "unix" scheme`,
    },
    {
      name: 'rejects an http URI',
      addr: 'http://x',
      message: `${P} socket URI must have a "tcp" or "unix" scheme`,
    },
    {
      name: 'rejects an empty address',
      addr: '',
      message: `${P} socket URI must have a "tcp" or "unix" scheme`,
    },
  ];
  for (const tc of invalid) {
    it(tc.name, () => {
      assert.throws(
        () => parseEndpointAddress(tc.addr),
        (err: unknown) => {
          assert.ok(err instanceof Error);
          assert.equal((err as { code?: string }).code, 'ERR_WORKLOADAPI_ADDRESS_INVALID');
          assert.ok(err.message.startsWith(`${tc.message}: `), err.message);
          return true;
        },
      );
    });
  }

  it('quotes the offending address without its user info', () => {
    assert.throws(
      () => parseEndpointAddress('tcp://user:s3cret@1.2.3.4:5'),
      (err: Error) => {
        assert.doesNotMatch(err.message, /s3cret/);
        assert.match(err.message, /"tcp:\/\/<redacted>@1\.2\.3\.4:5"$/);
        return true;
      },
    );
  });

  it('throws TypeError for a non-string address', () => {
    assert.throws(() => parseEndpointAddress(42 as unknown as string), TypeError);
  });
});

describe('resolveEndpointAddress', () => {
  it('prefers the explicit address over the environment', () => {
    const a = resolveEndpointAddress('unix:///a.sock', { [SPIFFE_ENDPOINT_SOCKET]: 'unix:///b.sock' });
    assert.equal(a.target, 'unix:///a.sock');
  });

  it('falls back to SPIFFE_ENDPOINT_SOCKET', () => {
    const a = resolveEndpointAddress(undefined, { SPIFFE_ENDPOINT_SOCKET: 'tcp://127.0.0.1:8000' });
    assert.equal(a.target, '127.0.0.1:8000');
  });

  it('validates the address from the environment', () => {
    assert.throws(() => resolveEndpointAddress(undefined, { SPIFFE_ENDPOINT_SOCKET: 'unix://host/x' }), {
      code: 'ERR_WORKLOADAPI_ADDRESS_INVALID',
      message: /must not include an authority/,
    });
  });

  for (const env of [{}, { SPIFFE_ENDPOINT_SOCKET: '' }]) {
    it(`fails when no address is configured (${JSON.stringify(env)})`, () => {
      assert.throws(() => resolveEndpointAddress(undefined, env), {
        code: 'ERR_WORKLOADAPI_ADDRESS_INVALID',
        message: 'workloadapi: workload endpoint socket address is not configured',
      });
    });
  }
});

describe('WorkloadApiClient address', () => {
  it('reads SPIFFE_ENDPOINT_SOCKET when no address is given', () => {
    const saved = process.env[SPIFFE_ENDPOINT_SOCKET];
    process.env[SPIFFE_ENDPOINT_SOCKET] = 'unix:///tmp/from-env.sock';
    try {
      const client = new WorkloadApiClient();
      assert.equal(client.address.target, 'unix:///tmp/from-env.sock');
      client.close();
      delete process.env[SPIFFE_ENDPOINT_SOCKET];
      assert.throws(() => new WorkloadApiClient(), {
        code: 'ERR_WORKLOADAPI_ADDRESS_INVALID',
        message: 'workloadapi: workload endpoint socket address is not configured',
      });
    } finally {
      if (saved === undefined) delete process.env[SPIFFE_ENDPOINT_SOCKET];
      else process.env[SPIFFE_ENDPOINT_SOCKET] = saved;
    }
  });
});
