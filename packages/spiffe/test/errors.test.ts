import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSpiffeError, SpiffeError, SpiffeIdError } from '@tessera/spiffe/errors';

describe('SpiffeError', () => {
  it('carries a stable code, its class name and a cause', () => {
    const cause = new Error('inner');
    const err = new SpiffeIdError('ERR_SPIFFEID_INVALID', 'spiffeid: scheme is missing or invalid', {
      cause,
    });
    assert.ok(err instanceof SpiffeError);
    assert.equal(err.code, 'ERR_SPIFFEID_INVALID');
    assert.equal(err.name, 'SpiffeIdError');
    assert.equal(err.cause, cause);
    assert.ok(isSpiffeError(err, 'ERR_SPIFFEID_INVALID'));
    assert.ok(!isSpiffeError(err, 'ERR_BUNDLE_INVALID'));
    assert.ok(!isSpiffeError(new Error('x')));
  });
});
