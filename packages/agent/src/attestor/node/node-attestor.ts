/**
 * Agent-side node attestors: what the agent sends in `Agent/AttestAgent` and how it answers the server's
 * challenges. Pairs with the server's attestors of the same type (SPIRE wire formats).
 *
 * @module
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { marshalX509PopPayload, signX509PopChallenge, X509POP_TYPE } from '@tessera/common/attestation';
import { SpiffeError } from '@tessera/spiffe/errors';

/** An agent-side node attestor: the attestation payload and the answers to the server's challenges. */
export interface AgentNodeAttestor {
  /** Attestation type (`join_token`, `x509pop`), the `data.type` sent to the server. */
  readonly type: string;
  /** The attestation payload (`data.payload`); read fresh for every attestation. */
  payload(): Promise<Buffer>;
  /**
   * Answers one server challenge.
   *
   * @throws {SpiffeError} ERR_NODE_ATTESTATION_INVALID when the challenge is malformed or unexpected
   */
  respond(challenge: Buffer): Promise<Buffer>;
}

function invalid(type: string, msg: string): SpiffeError {
  return new SpiffeError('ERR_NODE_ATTESTATION_INVALID', `nodeattestor(${type}): ${msg}`);
}

/**
 * Creates the join_token attestor: the payload is the token's UTF-8 bytes; the server sends no challenge.
 *
 * @throws {TypeError} when the token is empty
 * @example
 * ```ts
 * const attestor = createJoinTokenAttestor('6b0f…');
 * ```
 */
export function createJoinTokenAttestor(token: string): AgentNodeAttestor {
  if (typeof token !== 'string' || token === '')
    throw new TypeError('nodeattestor(join_token): token is required');
  return {
    type: 'join_token',
    payload: async () => Buffer.from(token, 'utf8'),
    respond: async () => {
      throw invalid('join_token', 'the server sent an unexpected challenge');
    },
  };
}

/** Files of the x509pop attestor. */
export interface X509PopAttestorFiles {
  readonly privateKeyPath: string;
  readonly certificatePath: string;
  readonly intermediatesPath?: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Parses every certificate of a PEM text, in order. */
function parsePemCertificates(text: string, what: string): X509Certificate[] {
  const blocks = text.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw invalid(X509POP_TYPE, `${what} holds no PEM certificate`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch {
      throw invalid(X509POP_TYPE, `${what} certificate ${i} cannot be parsed`);
    }
  });
}

/**
 * Creates the x509pop attestor: proves possession of the private key of a certificate that chains to a CA
 * the server trusts. Files are read at every attestation (a renewed node certificate is picked up).
 *
 * @example
 * ```ts
 * const attestor = createX509PopAttestor({ privateKeyPath: 'node.key', certificatePath: 'node.crt' });
 * ```
 */
export function createX509PopAttestor(files: X509PopAttestorFiles): AgentNodeAttestor {
  let key: KeyObject | undefined;
  const loadKey = async (): Promise<KeyObject> => {
    try {
      return createPrivateKey(await readFile(files.privateKeyPath));
    } catch (err) {
      throw new SpiffeError(
        'ERR_NODE_ATTESTATION_INVALID',
        `nodeattestor(x509pop): cannot load private key "${files.privateKeyPath}"`,
        { cause: err },
      );
    }
  };
  /** A certificate file's text; a read failure names the file and its config key. */
  const readCerts = async (path: string, key: string): Promise<string> => {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new SpiffeError(
        'ERR_NODE_ATTESTATION_INVALID',
        `nodeattestor(x509pop): cannot read ${key} "${path}": ${code}`,
        { cause: err },
      );
    }
  };
  return {
    type: X509POP_TYPE,
    async payload() {
      const leafChain = parsePemCertificates(
        await readCerts(files.certificatePath, 'certificate_path'),
        'certificate_path',
      );
      const chain = [...leafChain];
      if (files.intermediatesPath !== undefined) {
        chain.push(
          ...parsePemCertificates(
            await readCerts(files.intermediatesPath, 'intermediates_path'),
            'intermediates_path',
          ),
        );
      }
      key = await loadKey();
      const leaf = chain[0] as X509Certificate;
      if (!leaf.checkPrivateKey(key)) {
        throw invalid(
          X509POP_TYPE,
          `private key "${files.privateKeyPath}" does not match certificate "${files.certificatePath}"`,
        );
      }
      return marshalX509PopPayload(chain);
    },
    async respond(challenge) {
      key ??= await loadKey();
      return signX509PopChallenge(key, challenge);
    },
  };
}
