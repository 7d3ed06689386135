import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  describeConfigSchema,
  duration,
  object,
  port,
  record,
  renderConfigDocs,
  string,
  variant,
} from './index.js';

const schema = object({
  bindPort: port().default(8081).describe('Agent API port'),
  ttl: duration().defaultRaw('1h').describe('TTL'),
  upstream: variant({ disk: object({ certFilePath: string().describe('Cert') }) }).optional('(self-signed)'),
  peers: record(object({ url: string() }), { keyType: 'trust domain' }).optional(),
});

describe('describeConfigSchema', () => {
  it('lists every key depth first with type, default and description', () => {
    assert.deepEqual(describeConfigSchema(schema), [
      { key: 'bind_port', type: 'port (1-65535)', default: '8081', description: 'Agent API port' },
      { key: 'ttl', type: 'duration', default: '"1h"', description: 'TTL' },
      { key: 'upstream', type: 'exactly one of: disk', default: '(self-signed)', description: '' },
      { key: 'upstream.disk', type: 'section', default: '(one of the options)', description: '' },
      { key: 'upstream.disk.cert_file_path', type: 'string', default: '(required)', description: 'Cert' },
      { key: 'peers', type: 'map of trust domain to section', default: '(none)', description: '' },
      { key: 'peers.<trust_domain>.url', type: 'string', default: '(required)', description: '' },
    ]);
  });

  it('renders a Markdown table with pipes escaped', () => {
    const md = renderConfigDocs(object({ a: string().describe('x | y') }), { title: 'T', intro: 'Intro' });
    assert.equal(
      md,
      '# T\n\nIntro\n\n| Key | Type | Default | Description |\n|---|---|---|---|\n| `a` | string | (required) | x \\| y |\n',
    );
  });
});
