import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { ConfigError, SpiffeError } from '@tessera/spiffe/errors';
import { TestCa } from '@tessera/testing';
import { bundleFromApi, classifyServerError, type ServerErrorKind } from './client.js';

const grpcError = (code: status, details: string) =>
  Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details });
const systemError = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('classifyServerError', () => {
  const cases: { name: string; err: unknown; kind: ServerErrorKind }[] = [
    {
      name: 'Unavailable',
      err: grpcError(status.UNAVAILABLE, 'No connection established'),
      kind: 'unavailable',
    },
    { name: 'DeadlineExceeded', err: grpcError(status.DEADLINE_EXCEEDED, 'deadline'), kind: 'unavailable' },
    {
      name: 'a refused connection (ECONNREFUSED)',
      err: systemError('ECONNREFUSED', 'connect'),
      kind: 'unavailable',
    },
    { name: 'a reset connection (ECONNRESET)', err: systemError('ECONNRESET', 'read'), kind: 'unavailable' },
    {
      name: 'PermissionDenied for a banned agent',
      err: grpcError(status.PERMISSION_DENIED, 'agent "x" is banned'),
      kind: 'banned',
    },
    {
      name: 'PermissionDenied for an agent that is not attested',
      err: grpcError(status.PERMISSION_DENIED, 'agent "x" is not attested'),
      kind: 'not_attested',
    },
    {
      name: 'Unauthenticated for an expired client certificate',
      err: grpcError(
        status.UNAUTHENTICATED,
        'client certificate verification failed: certificate has expired',
      ),
      kind: 'other',
    },
    { name: 'InvalidArgument', err: grpcError(status.INVALID_ARGUMENT, 'bad csr'), kind: 'other' },
    {
      name: 'a file that cannot be read (ENOENT)',
      err: systemError('ENOENT', "ENOENT: no such file or directory, open '/x/node.crt'"),
      kind: 'other',
    },
    {
      name: 'a full disk (ENOSPC)',
      err: systemError('ENOSPC', 'ENOSPC: no space left on device'),
      kind: 'other',
    },
    {
      name: 'a SpiffeError',
      err: new SpiffeError('ERR_BUNDLE_INVALID', 'agent: server sent a bundle for "other.org"'),
      kind: 'other',
    },
    { name: 'a ConfigError', err: new ConfigError('ERR_CONFIG_INVALID', 'config: bad'), kind: 'other' },
    { name: 'a plain Error', err: new Error('agent: empty response'), kind: 'other' },
    { name: 'a thrown string', err: 'boom', kind: 'other' },
    { name: 'undefined', err: undefined, kind: 'other' },
  ];
  for (const tc of cases) {
    it(`classifies ${tc.name} as ${tc.kind}`, () => {
      assert.equal(classifyServerError(tc.err), tc.kind);
    });
  }
});

describe('bundleFromApi', () => {
  it('reports the tainted X.509 and JWT authorities of a bundle', () => {
    const ca = TestCa.create({ trustDomain: 'example.org' });
    const old = TestCa.create({ trustDomain: 'example.org' });
    const spki = () =>
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    const jwtKey = (keyId: string, tainted: boolean) => ({
      publicKey: spki(),
      keyId,
      expiresAt: 0n,
      tainted,
      hint: '',
    });
    const { bundle, taintedX509, taintedJwt } = bundleFromApi({
      trustDomain: 'example.org',
      x509Authorities: [
        { asn1: ca.rootDer(), tainted: false, hint: '' },
        { asn1: old.rootDer(), tainted: true, hint: '' },
      ],
      jwtAuthorities: [jwtKey('current', false), jwtKey('old', true)],
      refreshHint: 0n,
      sequenceNumber: 3n,
    });
    assert.deepEqual([...bundle.jwtAuthorities().keys()].sort(), ['current', 'old']);
    assert.deepEqual([...taintedX509], [old.certificate.fingerprint256]);
    assert.deepEqual([...taintedJwt], ['old']);
  });
});
