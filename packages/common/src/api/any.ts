import { Secret } from './gen/envoy/extensions/transport_sockets/tls/v3/secret.js';
import { SPIFFECertValidatorConfig } from './gen/envoy/extensions/transport_sockets/tls/v3/tls_spiffe_validator_config.js';
import type { Any } from './gen/google/protobuf/any.js';

/** The type URL prefix protobuf and Envoy use for `google.protobuf.Any`. */
export const TYPE_URL_PREFIX = 'type.googleapis.com/';

/**
 * A message codec paired with the type URL under which it travels inside `google.protobuf.Any`.
 */
export interface AnyCodec<T> {
  /** Full type URL, e.g. `type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret`. */
  readonly typeUrl: string;
  /** Fully-qualified protobuf message name (the part after the last `/`). */
  readonly typeName: string;
  /** Encodes the message (a ts-proto `MessageFns.encode`). */
  encode(message: T): { finish(): Uint8Array };
  /** Decodes the message (a ts-proto `MessageFns.decode`). */
  decode(bytes: Uint8Array): T;
}

/**
 * Pairs a ts-proto message codec with its fully-qualified protobuf name for use in `Any`.
 *
 * @param typeName - fully-qualified message name, e.g. `envoy.extensions.transport_sockets.tls.v3.Secret`.
 * @param fns - the generated codec object (e.g. `Secret`).
 * @throws {TypeError} when `typeName` is not a dotted protobuf name.
 * @example
 * ```ts
 * const codec = anyCodec('envoy.extensions.transport_sockets.tls.v3.Secret', Secret);
 * ```
 */
export function anyCodec<T>(
  typeName: string,
  fns: { encode(message: T): { finish(): Uint8Array }; decode(bytes: Uint8Array): T },
): AnyCodec<T> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(typeName)) {
    throw new TypeError(`api: "${typeName}" is not a fully-qualified protobuf message name`);
  }
  return {
    typeUrl: TYPE_URL_PREFIX + typeName,
    typeName,
    encode: (message) => fns.encode(message),
    decode: (bytes) => fns.decode(bytes),
  };
}

/**
 * Packs a message into a `google.protobuf.Any` under the codec's type URL.
 *
 * @example
 * ```ts
 * const resource = encodeAny(SECRET_ANY, { name: 'default', tlsCertificate: { ... } });
 * ```
 */
export function encodeAny<T>(codec: AnyCodec<T>, message: T): Any {
  return { typeUrl: codec.typeUrl, value: Buffer.from(codec.encode(message).finish()) };
}

/**
 * Unpacks a `google.protobuf.Any`, checking that it holds the codec's message type.
 *
 * The type URL's prefix is not checked (protobuf allows any host); the message name after the last `/` must
 * equal the codec's.
 *
 * @throws {TypeError} when the Any holds another message type.
 * @throws {Error} when the bytes are not a valid encoding (from the protobuf decoder).
 * @example
 * ```ts
 * const secret = decodeAny(SECRET_ANY, response.resources[0]!);
 * ```
 */
export function decodeAny<T>(codec: AnyCodec<T>, any: Any): T {
  const slash = any.typeUrl.lastIndexOf('/');
  const name = slash < 0 ? '' : any.typeUrl.slice(slash + 1);
  if (name !== codec.typeName) {
    throw new TypeError(`api: Any holds "${any.typeUrl}", expected "${codec.typeUrl}"`);
  }
  return codec.decode(any.value);
}

/** `Any` codec of Envoy's SDS resource `envoy.extensions.transport_sockets.tls.v3.Secret`. */
export const SECRET_ANY: AnyCodec<Secret> = anyCodec(
  'envoy.extensions.transport_sockets.tls.v3.Secret',
  Secret,
);

/** `Any` codec of Envoy's `envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig`. */
export const SPIFFE_CERT_VALIDATOR_CONFIG_ANY: AnyCodec<SPIFFECertValidatorConfig> = anyCodec(
  'envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig',
  SPIFFECertValidatorConfig,
);

/** SDS type URL of secrets (`DiscoveryRequest.type_url` / `DiscoveryResponse.type_url`). */
export const SECRET_TYPE_URL: string = SECRET_ANY.typeUrl;

/** Name of Envoy's SPIFFE certificate validator extension (`TypedExtensionConfig.name`). */
export const SPIFFE_CERT_VALIDATOR_NAME = 'envoy.tls.cert_validator.spiffe';
