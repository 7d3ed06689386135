import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  type HelperConfig,
  HelperConfigError,
  loadHelperConfig,
  parseConfigText,
  splitCommandLine,
  validateHelperConfig,
} from './config.js';
import { parseHcl } from './hcl.js';

const env = {};
const cwd = '/work';

/** A spiffe-helper configuration using every key it knows, as its users write it. */
const SPIFFE_HELPER_CONF = `
# spiffe-helper configuration
agent_address = "/run/spire/sockets/agent.sock"
cmd = "ghostunnel"
cmd_args = "server --listen localhost:8002 --keystore \\"certs/svid key.pem\\" --allow-uri-san spiffe://example.org/db"
pid_file_name = "/run/nginx.pid"
renew_signal = "SIGUSR1"
cert_dir = "/certs"
svid_file_name = "svid.pem"
svid_key_file_name = "svid_key.pem"
svid_bundle_file_name = "svid_bundle.pem"
jwt_svids = [{jwt_audience="db", jwt_svid_file_name="db.jwt"}, {
  jwt_audience = "api"
  jwt_svid_file_name = "api.jwt"
  jwt_extra_audiences = ["api2", "api3"]
}]
jwt_bundle_file_name = "jwt_bundle.json"
include_federated_domains = true
add_intermediates_to_bundle = true
cert_file_mode = 0444
key_file_mode = 0400
jwt_bundle_file_mode = 0640
jwt_svid_file_mode = 0440
hint = "internal"
daemon_mode = true
health_checks {
  listener_enabled = true
  bind_port = 8089
  liveness_path = "/healthz"
  readiness_path = "/readyz"
}
`;

describe('spiffe-helper HCL compatibility', () => {
  const config = validateHelperConfig(parseConfigText(SPIFFE_HELPER_CONF, 'hcl'), {
    format: 'hcl',
    env,
    cwd,
  });
  const cases: { key: string; get: (c: HelperConfig) => unknown; want: unknown }[] = [
    { key: 'agent_address', get: (c) => c.agentAddress, want: 'unix:///run/spire/sockets/agent.sock' },
    { key: 'cmd', get: (c) => c.cmd, want: 'ghostunnel' },
    {
      key: 'cmd_args',
      get: (c) => c.cmdArgs,
      want: [
        'server',
        '--listen',
        'localhost:8002',
        '--keystore',
        'certs/svid key.pem',
        '--allow-uri-san',
        'spiffe://example.org/db',
      ],
    },
    { key: 'pid_file_name', get: (c) => c.pidFileName, want: '/run/nginx.pid' },
    { key: 'renew_signal', get: (c) => c.renewSignal, want: 'SIGUSR1' },
    { key: 'cert_dir', get: (c) => c.certDir, want: '/certs' },
    { key: 'svid_file_name', get: (c) => c.x509?.svidFile, want: '/certs/svid.pem' },
    { key: 'svid_key_file_name', get: (c) => c.x509?.keyFile, want: '/certs/svid_key.pem' },
    { key: 'svid_bundle_file_name', get: (c) => c.x509?.bundleFile, want: '/certs/svid_bundle.pem' },
    {
      key: 'jwt_svids',
      get: (c) => c.jwtSvids,
      want: [
        { audience: 'db', extraAudiences: [], file: '/certs/db.jwt' },
        { audience: 'api', extraAudiences: ['api2', 'api3'], file: '/certs/api.jwt' },
      ],
    },
    { key: 'jwt_bundle_file_name', get: (c) => c.jwtBundleFile, want: '/certs/jwt_bundle.json' },
    { key: 'include_federated_domains', get: (c) => c.includeFederatedDomains, want: true },
    { key: 'add_intermediates_to_bundle', get: (c) => c.addIntermediatesToBundle, want: true },
    { key: 'cert_file_mode (HCL octal literal)', get: (c) => c.certFileMode, want: 0o444 },
    { key: 'key_file_mode', get: (c) => c.keyFileMode, want: 0o400 },
    { key: 'jwt_bundle_file_mode', get: (c) => c.jwtBundleFileMode, want: 0o640 },
    { key: 'jwt_svid_file_mode', get: (c) => c.jwtSvidFileMode, want: 0o440 },
    { key: 'hint', get: (c) => c.hint, want: 'internal' },
    { key: 'daemon_mode', get: (c) => c.daemonMode, want: true },
    {
      key: 'health_checks',
      get: (c) => c.healthChecks,
      want: {
        listenerEnabled: true,
        bindPort: 8089,
        bindAddress: '0.0.0.0',
        livenessPath: '/healthz',
        readinessPath: '/readyz',
      },
    },
  ];
  for (const tc of cases) {
    it(`maps ${tc.key} to the same meaning`, () => {
      assert.deepEqual(tc.get(config), tc.want);
    });
  }

  it('applies spiffe-helper defaults when keys are omitted', () => {
    const c = validateHelperConfig(
      { svid_file_name: 'a.pem', svid_key_file_name: 'k.pem', svid_bundle_file_name: 'b.pem' },
      { env, cwd },
    );
    assert.equal(c.certFileMode, 0o644);
    assert.equal(c.keyFileMode, 0o600);
    assert.equal(c.jwtBundleFileMode, 0o600);
    assert.equal(c.jwtSvidFileMode, 0o600);
    assert.equal(c.daemonMode, true);
    assert.equal(c.certDir, '/work');
    assert.equal(c.x509?.svidFile, '/work/a.pem');
    assert.equal(c.agentAddress, 'unix:///tmp/tessera-agent/public/api.sock');
    assert.equal(c.healthChecks.listenerEnabled, false);
    assert.equal(c.healthChecks.bindPort, 8081);
    assert.equal(c.healthChecks.livenessPath, '/live');
    assert.equal(c.healthChecks.readinessPath, '/ready');
    assert.equal(c.renewSignal, undefined);
  });

  it('takes the address from SPIFFE_ENDPOINT_SOCKET when agent_address is unset', () => {
    const c = validateHelperConfig(
      { jwt_bundle_file_name: 'b.json' },
      { env: { SPIFFE_ENDPOINT_SOCKET: 'tcp://127.0.0.1:9000' }, cwd },
    );
    assert.equal(c.agentAddress, 'tcp://127.0.0.1:9000');
  });

  it('reads the same configuration from YAML and JSON', () => {
    const yaml = `
agent_address: unix:///run/spire/sockets/agent.sock
cert_dir: /certs
svid_file_name: svid.pem
svid_key_file_name: svid_key.pem
svid_bundle_file_name: svid_bundle.pem
key_file_mode: "0400"
renew_signal: HUP
cmd: nginx
cmd_args: ["-g", "daemon off;"]
jwt_svids:
  - jwt_audience: db
    jwt_svid_file_name: db.jwt
health_checks:
  listener_enabled: true
`;
    const fromYaml = validateHelperConfig(parseConfigText(yaml, 'yaml'), { format: 'yaml', env, cwd });
    const json = JSON.stringify(parseConfigText(yaml, 'yaml'));
    const fromJson = validateHelperConfig(parseConfigText(json, 'json'), { format: 'json', env, cwd });
    assert.deepEqual(fromJson, fromYaml);
    assert.equal(fromYaml.keyFileMode, 0o400);
    assert.equal(fromYaml.renewSignal, 'SIGHUP');
    assert.deepEqual(fromYaml.cmdArgs, ['-g', 'daemon off;']);
  });

  describe('loadHelperConfig', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-helper-config-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const cases = [
      { name: 'helper.conf', text: 'jwt_bundle_file_name = "b.json"\n' },
      { name: 'helper.hcl', text: 'jwt_bundle_file_name = "b.json"\n' },
      { name: 'helper.yaml', text: 'jwt_bundle_file_name: b.json\n' },
      { name: 'helper.json', text: '{"jwt_bundle_file_name": "b.json"}' },
      { name: 'helper', text: 'jwt_bundle_file_name = "b.json"\n' },
    ];
    for (const tc of cases) {
      it(`reads ${tc.name} by its extension or content`, () => {
        const path = join(dir, tc.name);
        writeFileSync(path, tc.text);
        const c = loadHelperConfig(path, { env, cwd: '/x' });
        assert.equal(c.jwtBundleFile, '/x/b.json');
      });
    }
    it('reports a missing file with its path', () => {
      assert.throws(() => loadHelperConfig(join(dir, 'missing.conf'), { env }), {
        code: 'ERR_CONFIG_INVALID',
        message: /helper config: cannot read ".*missing\.conf" \(ENOENT\)/,
      });
    });
  });
});

describe('bad configurations', () => {
  const x509 = { svid_file_name: 's.pem', svid_key_file_name: 'k.pem', svid_bundle_file_name: 'b.pem' };
  const cases: { name: string; raw: unknown; format?: 'hcl' | 'yaml'; issues: [string, RegExp][] }[] = [
    { name: 'a non-object', raw: [1], issues: [['(root)', /must be an object, got list/]] },
    {
      name: 'an unknown top-level key',
      raw: { ...x509, agentAddress: '/x' },
      issues: [['agentAddress', /unknown key/]],
    },
    {
      name: 'an unknown key in jwt_svids',
      raw: { jwt_svids: [{ jwt_audience: 'a', jwt_svid_file_name: 'a.jwt', jwt_file: 'x' }] },
      issues: [['jwt_svids[0].jwt_file', /unknown key/]],
    },
    {
      name: 'an unknown key in health_checks',
      raw: { ...x509, health_checks: { listener_enabled: true, port: 1 } },
      issues: [['health_checks.port', /unknown key/]],
    },
    {
      name: 'a JWT-SVID without audience or file',
      raw: { jwt_svids: [{}] },
      issues: [
        ['jwt_svids[0].jwt_audience', /is required/],
        ['jwt_svids[0].jwt_svid_file_name', /is required/],
      ],
    },
    {
      name: 'a partial X.509 file set',
      raw: { svid_file_name: 's.pem', svid_key_file_name: 'k.pem' },
      issues: [
        ['svid_file_name', /all or none of svid_file_name, svid_key_file_name and svid_bundle_file_name/],
      ],
    },
    {
      name: 'nothing to write',
      raw: {},
      issues: [['(root)', /nothing to write/]],
    },
    {
      name: 'pid_file_name without renew_signal',
      raw: { ...x509, pid_file_name: '/run/x.pid' },
      issues: [['renew_signal', /must be set when pid_file_name is set/]],
    },
    {
      name: 'an unknown signal',
      raw: { ...x509, renew_signal: 'SIGBOGUS' },
      issues: [['renew_signal', /unknown signal "SIGBOGUS"/]],
    },
    {
      name: 'a file mode written as a YAML number',
      raw: { ...x509, key_file_mode: 600 },
      format: 'yaml',
      issues: [
        ['key_file_mode', /must be an octal file mode such as "0644", got 600 \(YAML and JSON read 0644/],
      ],
    },
    {
      name: 'a file mode out of range',
      raw: { ...x509, cert_file_mode: 0o7777 },
      format: 'hcl',
      issues: [['cert_file_mode', /must be a file mode between 0001 and 0777, got 4095/]],
    },
    {
      name: 'two outputs on one file',
      raw: { ...x509, jwt_bundle_file_name: 'b.pem' },
      issues: [['jwt_bundle_file_name', /writes the same file as svid_bundle_file_name/]],
    },
    {
      name: 'cmd in one-shot mode',
      raw: { ...x509, cmd: 'nginx', daemon_mode: false },
      issues: [['cmd', /is not used when daemon_mode is false/]],
    },
    {
      name: 'cmd_args without cmd',
      raw: { ...x509, cmd_args: '-x' },
      issues: [['cmd_args', /is set but cmd is not/]],
    },
    {
      name: 'a relative agent address',
      raw: { ...x509, agent_address: 'agent.sock' },
      issues: [
        ['agent_address', /must be an absolute socket path or a unix:\/\/ or tcp:\/\/ URI, got "agent.sock"/],
      ],
    },
    {
      name: 'an invalid agent URI',
      raw: { ...x509, agent_address: 'unix://host/agent.sock' },
      issues: [['agent_address', /invalid Workload API address/]],
    },
    {
      name: 'a bad health port and paths',
      raw: { ...x509, health_checks: { bind_port: 70000, liveness_path: 'live', readiness_path: '/live' } },
      issues: [
        ['health_checks.bind_port', /must be a port number \(0-65535\), got 70000/],
        ['health_checks.liveness_path', /must start with "\/", got "live"/],
      ],
    },
    {
      name: 'values of the wrong type',
      raw: { ...x509, daemon_mode: 'yes', hint: 3, include_federated_domains: 1 },
      issues: [
        ['hint', /must be a string, got number/],
        ['daemon_mode', /must be true or false, got string "yes"/],
        ['include_federated_domains', /must be true or false, got number 1/],
      ],
    },
  ];
  for (const tc of cases) {
    it(`rejects ${tc.name}, naming every offending key`, () => {
      assert.throws(
        () => validateHelperConfig(tc.raw, { env, cwd, ...(tc.format ? { format: tc.format } : {}) }),
        (err: unknown) => {
          assert.ok(err instanceof HelperConfigError);
          assert.equal(err.code, 'ERR_CONFIG_INVALID');
          assert.match(err.message, /^helper config: /);
          for (const [path, message] of tc.issues) {
            const found = err.issues.find((i) => i.path === path && message.test(i.message));
            assert.ok(found, `missing issue ${path}: ${message} in ${JSON.stringify(err.issues)}`);
            assert.ok(err.message.includes(`${path}: `));
          }
          assert.equal(err.issues.length, tc.issues.length, JSON.stringify(err.issues));
          return true;
        },
      );
    });
  }

  it('reports several problems of one file at once', () => {
    const raw = parseConfigText('bogus = 1\nrenew_signal = "NOPE"\nsvid_file_name = "a"\n', 'hcl');
    assert.throws(
      () => validateHelperConfig(raw, { env, cwd, format: 'hcl' }),
      (err: unknown) => {
        assert.ok(err instanceof HelperConfigError);
        assert.deepEqual(
          err.issues.map((i) => i.path),
          ['bogus', 'renew_signal', 'svid_file_name'],
        );
        return true;
      },
    );
  });
});

describe('parseHcl', () => {
  it('parses comments, blocks, lists, objects, escapes and HCL 1 numbers', () => {
    const v = parseHcl(`
// line comment
/* block
   comment */ a = "x\\ty\\"\\u00e9" # trailing
b = 0x1F
c = 0755
d = -12
e = 1.5e3
f = [1, "two", true, [false],]
g = { h = 1, "i j" = "k" }
block { x = 1 }
block { x = 2 }
`);
    assert.deepEqual(v, {
      a: 'x\ty"é',
      b: 31,
      c: 0o755,
      d: -12,
      e: 1500,
      f: [1, 'two', true, [false]],
      g: { h: 1, 'i j': 'k' },
      block: [{ x: 1 }, { x: 2 }],
    });
  });

  it('keeps __proto__ as a plain key', () => {
    const v = parseHcl('__proto__ = { polluted = true }');
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.deepEqual(Object.keys(v), ['__proto__']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  const errors: { name: string; text: string; message: RegExp }[] = [
    {
      name: 'a missing equals sign',
      text: 'a "b"',
      message: /line 1, column 3: expected '=' after key "a", got string "b"/,
    },
    { name: 'an unterminated string', text: 'a = "b\n', message: /line 1, column 5: unterminated string/ },
    {
      name: 'an unterminated block',
      text: 'a {\n b = 1\n',
      message: /line 3, column 1: expected '}' before end of file/,
    },
    { name: 'a duplicate key', text: 'a = 1\na = 2', message: /line 2, column 1: duplicate key "a"/ },
    { name: 'a bare word value', text: 'a = yes', message: /line 1, column 5: expected a value, got "yes"/ },
    { name: 'a heredoc', text: 'a = <<EOF\nx\nEOF', message: /heredoc strings are not supported/ },
    { name: 'an invalid number', text: 'a = 08', message: /invalid number "08"/ },
    {
      name: 'two values on a line',
      text: 'a = 1 b = 2',
      message: /line 1, column 7: expected end of line after the value of "a"/,
    },
    { name: 'an unterminated list', text: 'a = [1 2]', message: /expected ',' or ']' in list, got number 2/ },
    { name: 'a bad escape', text: 'a = "\\q"', message: /invalid escape "\\\\q"/ },
  ];
  for (const tc of errors) {
    it(`rejects ${tc.name} with its position`, () => {
      assert.throws(() => parseHcl(tc.text), { code: 'ERR_CONFIG_INVALID', message: tc.message });
    });
  }
});

describe('splitCommandLine', () => {
  const cases: [string, string[]][] = [
    ['', []],
    ['a b  c', ['a', 'b', 'c']],
    ['-g "daemon off;"', ['-g', 'daemon off;']],
    ['"a ""quoted"" word" x', ['a "quoted" word', 'x']],
    ['""', ['']],
  ];
  for (const [input, want] of cases) {
    it(`splits ${JSON.stringify(input)} like spiffe-helper`, () => {
      assert.deepEqual(splitCommandLine(input), want);
    });
  }
  it('rejects an unterminated quote', () => {
    assert.throws(() => splitCommandLine('"abc'), TypeError);
  });
});

describe('YAML and JSON syntax errors', () => {
  it('reports invalid YAML as ERR_CONFIG_INVALID', () => {
    assert.throws(() => parseConfigText('a: [1\n', 'yaml'), {
      code: 'ERR_CONFIG_INVALID',
      message: /invalid YAML/,
    });
  });
  it('reports duplicate YAML keys', () => {
    assert.throws(() => parseConfigText('a: 1\na: 2\n', 'yaml'), {
      code: 'ERR_CONFIG_INVALID',
      message: /invalid YAML/,
    });
  });
  it('reports invalid JSON as ERR_CONFIG_INVALID', () => {
    assert.throws(() => parseConfigText('{"a":', 'json'), {
      code: 'ERR_CONFIG_INVALID',
      message: /invalid JSON/,
    });
  });
});
