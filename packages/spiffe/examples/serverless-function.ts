/**
 * Example: a Node "function" (AWS Lambda, Cloud Run, Azure Functions) that gets its SPIFFE identity by remote
 * attestation from a Tessera server's serverless API and calls an mTLS service with the same TLS helpers a
 * workload on a node uses.
 *
 * Environment:
 * - `TESSERA_SERVERLESS_ADDRESS`: the serverless API, e.g. `https://spiffe.example.org:8444`.
 * - `TESSERA_SERVERLESS_CA`: PEM file that authenticates it (the trust bundle when the server serves its own
 *   SVID; then `TESSERA_SERVERLESS_SERVER_ID`, e.g. `spiffe://example.org/spire/server`, is checked too).
 * - `ATTESTATION_TYPE` (`gcp_iit`, `aws_token`, `azure_msi`) and how to get a token: on Google Cloud the metadata
 *   server (`http://metadata/computeMetadata/v1/instance/service-accounts/default/identity?audience=…&format=full`),
 *   on AWS `sts:GetWebIdentityToken`, on Azure the managed identity endpoint. Here one of:
 *   `ATTESTATION_TOKEN_FILE`, a file holding the token (re-read before every attestation: a platform that
 *   refreshes a projected token file), or `ATTESTATION_TOKEN_COMMAND`, a shell command that prints a fresh token.
 *   The server accepts each token once, so re-attestation needs a new one.
 * - `TARGET_URL` and `TARGET_ID`: the mTLS service to call and the SPIFFE ID it must present.
 *
 * It prints `identity: <its SPIFFE ID>` and then `<HTTP status> <response body>`; it exits 1 on any failure
 * (attestation denied, the service not presenting `TARGET_ID`, …).
 *
 * Run: `node packages/spiffe/examples/dist/serverless-function.js`
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import { SpiffeId } from '@tessera/spiffe/spiffeid';
import { authorizeId, createSpiffeHttpsAgent, mtlsClientOptions } from '@tessera/spiffe/tls';
import { type Attestation, X509Source } from '@tessera/spiffe/workloadapi';

function env(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`set ${name}`);
  return v;
}

/** A fresh platform token per request: the token file read again, or the token command run again. */
function attestations(): Attestation[] {
  const file = process.env.ATTESTATION_TOKEN_FILE;
  const token = (
    file !== undefined && file !== ''
      ? readFileSync(file, 'utf8')
      : execFileSync('/bin/sh', ['-c', env('ATTESTATION_TOKEN_COMMAND')], { encoding: 'utf8' })
  ).trim();
  if (token === '') throw new Error('the platform gave no identity token');
  return [{ type: env('ATTESTATION_TYPE'), evidence: token }];
}

/** The function handler: identity by remote attestation (re-attested at half-life), then one mTLS call. */
export async function handler(): Promise<string> {
  const serverId = process.env.TESSERA_SERVERLESS_SERVER_ID;
  await using source = await X509Source.create({
    remote: {
      address: env('TESSERA_SERVERLESS_ADDRESS'),
      attestations,
      ca: readFileSync(env('TESSERA_SERVERLESS_CA')),
      ...(serverId === undefined ? {} : { serverId }),
    },
  });
  console.log(`identity: ${source.getX509Svid().id}`);
  const agent = createSpiffeHttpsAgent(() =>
    mtlsClientOptions(source, source, authorizeId(SpiffeId.fromString(env('TARGET_ID')))),
  );
  try {
    return await new Promise<string>((resolve, reject) => {
      https
        .get(env('TARGET_URL'), { agent }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => {
            body += c.toString();
          });
          res.on('end', () => resolve(`${res.statusCode} ${body}`));
          res.on('error', reject);
        })
        .on('error', reject);
    });
  } finally {
    agent.destroy();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  handler().then(
    (r) => console.log(r),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
