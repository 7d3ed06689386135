/**
 * End-to-end scenario: Debian's nginx serving mutual TLS with the SVID that tessera-helper writes, reloaded
 * (SIGHUP) by the helper on every rotation, while curl with its own SVID keeps succeeding and a client from
 * another trust domain is rejected. The Workload API address is a parameter, so the same scenario runs
 * against the fake Workload API and against a real agent.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '@tessera/testing';
import { HELPER_BIN, type RunningProcess, spawnProcess, waitFor } from './support.js';

const execFileP = promisify(execFile);

/** Client credentials for curl. */
export interface ClientFiles {
  /** PEM certificate chain, leaf first. */
  readonly certFile: string;
  /** PEM private key. */
  readonly keyFile: string;
}

/** Options of {@link runNginxScenario}. */
export interface NginxScenarioOptions {
  /** Workload API address the helper reads the server SVID from. */
  readonly agentAddress: string;
  /** Empty directory for configs, certificates and logs. */
  readonly workDir: string;
  /** DNS name carried by the server SVID (curl verifies it; no verification is disabled). */
  readonly serverName: string;
  /** A client SVID of the server's trust domain. */
  readonly client: ClientFiles;
  /** A client certificate from another trust domain. */
  readonly foreignClient: ClientFiles;
  /** How many distinct served certificates (serials) to observe; default 3. */
  readonly minServedSerials?: number;
  /** Overall time limit; default 60 s. */
  readonly timeoutMs?: number;
  /** nginx binary; default `/usr/sbin/nginx`. */
  readonly nginx?: string;
  /** Called once nginx serves, e.g. to start rotating SVIDs. */
  readonly onServing?: () => void;
}

/** What the scenario observed. */
export interface NginxScenarioResult {
  /** Distinct serial numbers of the certificates nginx served, in order. */
  readonly serials: readonly string[];
  /** Successful mTLS requests made. */
  readonly requests: number;
  /** HTTP status and body nginx gave the foreign client. */
  readonly foreign: { readonly status: number; readonly body: string };
  /** HTTP status and body nginx gave a client without a certificate. */
  readonly anonymous: { readonly status: number; readonly body: string };
  /** The helper's log (stderr). */
  readonly helperLog: string;
}

interface CurlResult {
  readonly status: number;
  readonly body: string;
  readonly serverCert: X509Certificate | undefined;
}

/** One HTTPS request with curl: the bundle as CA, the name resolved to loopback, optional client cert. */
async function curl(
  url: string,
  name: string,
  port: number,
  caFile: string,
  client: ClientFiles | undefined,
  bodyFile: string,
): Promise<CurlResult> {
  const args = [
    '--silent',
    '--show-error',
    '--max-time',
    '5',
    '--resolve',
    `${name}:${port}:127.0.0.1`,
    '--cacert',
    caFile,
    '--output',
    bodyFile,
    '--write-out',
    '%{http_code}\n%{certs}',
    ...(client ? ['--cert', client.certFile, '--key', client.keyFile] : []),
    url,
  ];
  const { stdout } = await execFileP('curl', args, { maxBuffer: 1 << 20 });
  const nl = stdout.indexOf('\n');
  const status = Number(stdout.slice(0, nl));
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(stdout.slice(nl + 1));
  return {
    status,
    body: readFileSync(bodyFile, 'utf8'),
    serverCert: pem ? new X509Certificate(pem[0]) : undefined,
  };
}

/**
 * Runs the scenario; resolves with what it observed, rejects on the first failed request or at the time
 * limit. The helper and nginx run as real processes in their own process group, which is always killed.
 *
 * @example
 * ```ts
 * const result = await runNginxScenario({ agentAddress: api.address, workDir, serverName: 'nginx.test', client, foreignClient });
 * ```
 */
export async function runNginxScenario(o: NginxScenarioOptions): Promise<NginxScenarioResult> {
  const certDir = join(o.workDir, 'certs');
  const prefix = join(o.workDir, 'nginx');
  mkdirSync(certDir, { recursive: true, mode: 0o700 });
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  const port = await freePort();
  const nginxConf = join(prefix, 'nginx.conf');
  const asRoot = process.getuid?.() === 0;
  writeFileSync(
    nginxConf,
    `${asRoot ? 'user nobody nogroup;\n' : ''}daemon off;
master_process on;
worker_processes 1;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'logs', 'error.log')} notice;
events { worker_connections 64; }
http {
  access_log ${join(prefix, 'logs', 'access.log')};
  client_body_temp_path ${join(prefix, 'client_body')};
  proxy_temp_path ${join(prefix, 'proxy')};
  fastcgi_temp_path ${join(prefix, 'fastcgi')};
  uwsgi_temp_path ${join(prefix, 'uwsgi')};
  scgi_temp_path ${join(prefix, 'scgi')};
  server {
    listen 127.0.0.1:${port} ssl;
    server_name ${o.serverName};
    ssl_certificate ${join(certDir, 'svid.pem')};
    ssl_certificate_key ${join(certDir, 'svid_key.pem')};
    ssl_client_certificate ${join(certDir, 'svid_bundle.pem')};
    ssl_verify_client on;
    ssl_verify_depth 3;
    ssl_session_cache off;
    ssl_session_tickets off;
    location / {
      default_type text/plain;
      return 200 "hello $ssl_client_verify\\n";
    }
  }
}
`,
  );
  const helperConf = join(o.workDir, 'helper.conf');
  writeFileSync(
    helperConf,
    `agent_address = ${JSON.stringify(o.agentAddress)}
cmd = ${JSON.stringify(o.nginx ?? '/usr/sbin/nginx')}
cmd_args = ${JSON.stringify(`-p ${prefix} -c ${nginxConf} -e ${join(prefix, 'logs', 'error.log')}`)}
renew_signal = "SIGHUP"
cert_dir = ${JSON.stringify(certDir)}
svid_file_name = "svid.pem"
svid_key_file_name = "svid_key.pem"
svid_bundle_file_name = "svid_bundle.pem"
`,
  );
  const bundleFile = join(certDir, 'svid_bundle.pem');
  const bodyFile = join(o.workDir, 'body.txt');
  const url = `https://${o.serverName}:${port}/`;
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  const helper: RunningProcess = spawnProcess(process.execPath, [HELPER_BIN, '--config', helperConf]);
  try {
    await waitFor(
      'nginx to serve with the SVID',
      async () => {
        if (helper.child.exitCode !== null) throw new Error(`helper exited: ${helper.stderr()}`);
        const r = await curl(url, o.serverName, port, bundleFile, o.client, bodyFile);
        return r.status === 200 ? r : undefined;
      },
      20_000,
      100,
    );
    o.onServing?.();
    const serials: string[] = [];
    let requests = 0;
    while (serials.length < (o.minServedSerials ?? 3)) {
      if (Date.now() > deadline) {
        throw new Error(
          `saw ${serials.length} served certificates before the time limit; helper log:\n${helper.stderr()}`,
        );
      }
      // Every request must succeed across reloads: a failure rejects the scenario.
      const r = await curl(url, o.serverName, port, bundleFile, o.client, bodyFile);
      if (r.status !== 200 || r.body !== 'hello SUCCESS\n') {
        throw new Error(`request ${requests + 1} failed: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      }
      requests++;
      const serial = r.serverCert?.serialNumber;
      if (serial === undefined) throw new Error('curl did not report the server certificate');
      // Distinct certificates in the order first served. Right after a reload (SIGHUP) nginx's old workers may
      // still accept a connection or two before they drain, so the previous certificate can briefly reappear:
      // that is nginx's graceful reload, not a stale file.
      if (!serials.includes(serial)) serials.push(serial);
      await new Promise((res) => setTimeout(res, 50));
    }
    const foreign = await curl(url, o.serverName, port, bundleFile, o.foreignClient, bodyFile);
    const anonymous = await curl(url, o.serverName, port, bundleFile, undefined, bodyFile);
    helper.signal('SIGTERM');
    let stopTimer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      helper.exited,
      new Promise<undefined>((r) => {
        stopTimer = setTimeout(() => r(undefined), 15_000);
      }),
    ]);
    clearTimeout(stopTimer);
    if (exit === undefined || exit.code !== 0) {
      throw new Error(`helper did not stop cleanly on SIGTERM: ${JSON.stringify(exit)}\n${helper.stderr()}`);
    }
    return {
      serials,
      requests,
      foreign: { status: foreign.status, body: foreign.body },
      anonymous: { status: anonymous.status, body: anonymous.body },
      helperLog: helper.stderr(),
    };
  } finally {
    await helper.kill();
  }
}
