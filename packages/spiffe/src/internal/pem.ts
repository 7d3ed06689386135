/**
 * PEM (RFC 7468) decoding and encoding, and splitting of concatenated DER elements (internal, never exported
 * from a public subpath). Failures throw {@link EncodingError}; callers wrap it in their area's SpiffeError.
 *
 * @module
 */

/** A malformed PEM text or DER sequence. Internal: callers convert it into their own SpiffeError. */
export class EncodingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncodingError';
  }
}

/** One decoded PEM block: its label (`CERTIFICATE`, `PRIVATE KEY`, …) and its DER bytes. */
export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

// A label is printable ASCII without '-' (RFC 7468 §3 allows inner hyphens; no real-world label we read has one).
const BEGIN_RE = /-----BEGIN ([\x20-\x2c\x2e-\x7e]+)-----/g;
const END_PREFIX = '-----END ';
const BASE64_BODY_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const WHITESPACE_RE = /[ \t\r\n\f\v]+/g;

/**
 * Decodes every PEM block of `text`. Text before, between and after blocks is ignored (OpenSSL's
 * `Bag Attributes`, `subject=` lines, comments); whitespace inside a block is ignored. A block with an
 * unterminated BEGIN line, an END label that differs, headers, non-base64 characters, bad padding or no content
 * is an error: nothing is silently skipped inside a block.
 *
 * @param text PEM text (a Buffer is read as UTF-8/ASCII)
 * @param label when given, only blocks with this label are returned (the others are still checked)
 * @throws {EncodingError} on a malformed block
 */
export function decodePem(text: string | Uint8Array, label?: string): PemBlock[] {
  const s =
    typeof text === 'string'
      ? text
      : Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('latin1');
  const blocks: PemBlock[] = [];
  BEGIN_RE.lastIndex = 0;
  let pos = 0;
  for (;;) {
    BEGIN_RE.lastIndex = pos;
    const m = BEGIN_RE.exec(s);
    if (m === null) break;
    const blockLabel = m[1] ?? '';
    const bodyStart = m.index + m[0].length;
    const endAt = s.indexOf(END_PREFIX, bodyStart);
    if (endAt < 0) throw new EncodingError(`pem: block "${blockLabel}" has no END line`);
    const endLine = `${END_PREFIX}${blockLabel}-----`;
    if (!s.startsWith(endLine, endAt)) {
      throw new EncodingError(`pem: block "${blockLabel}" is not terminated by "${endLine}"`);
    }
    const body = s.slice(bodyStart, endAt).replace(WHITESPACE_RE, '');
    if (body.length === 0) throw new EncodingError(`pem: block "${blockLabel}" is empty`);
    if (!BASE64_BODY_RE.test(body) || body.length % 4 !== 0) {
      throw new EncodingError(`pem: block "${blockLabel}" contains invalid base64`);
    }
    if (label === undefined || label === blockLabel) {
      blocks.push({ label: blockLabel, der: Buffer.from(body, 'base64') });
    }
    pos = endAt + endLine.length;
  }
  return blocks;
}

/**
 * Encodes `der` as one PEM block with 64-character lines and a trailing newline.
 *
 * @param label block label, e.g. `CERTIFICATE`
 * @param der the bytes
 */
export function encodePem(label: string, der: Uint8Array): string {
  if (!/^[\x20-\x2c\x2e-\x7e]+$/.test(label))
    throw new RangeError(`pem: invalid label ${JSON.stringify(label)}`);
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let out = `-----BEGIN ${label}-----\n`;
  for (let i = 0; i < b64.length; i += 64) out += `${b64.slice(i, i + 64)}\n`;
  return `${out}-----END ${label}-----\n`;
}

/**
 * Splits concatenated DER SEQUENCEs (the Workload API's certificate and bundle fields) into one Buffer per
 * element, by reading each TLV header. The returned Buffers share memory with the input. Empty input gives `[]`.
 *
 * @throws {EncodingError} when an element is not a SEQUENCE, uses indefinite or over-long lengths, or is truncated
 */
export function splitConcatenatedDer(der: Uint8Array): Buffer[] {
  const buf = Buffer.isBuffer(der) ? der : Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const out: Buffer[] = [];
  let pos = 0;
  const n = buf.length;
  while (pos < n) {
    const start = pos;
    if (buf[pos] !== 0x30) {
      throw new EncodingError(
        `der: expected a SEQUENCE at offset ${start}, found tag 0x${hex(buf[pos] ?? 0)}`,
      );
    }
    pos++;
    if (pos >= n) throw new EncodingError(`der: truncated element at offset ${start}`);
    const first = buf[pos++] ?? 0;
    let len: number;
    if (first < 0x80) {
      len = first;
    } else {
      const count = first & 0x7f;
      if (count === 0) throw new EncodingError(`der: indefinite length at offset ${start}`);
      if (count > 4) throw new EncodingError(`der: length of element at offset ${start} is too large`);
      if (pos + count > n) throw new EncodingError(`der: truncated element at offset ${start}`);
      len = 0;
      for (let i = 0; i < count; i++) len = len * 256 + (buf[pos++] ?? 0);
      if (len < 0x80 || (count > 1 && buf[pos - count] === 0)) {
        throw new EncodingError(`der: non-minimal length encoding at offset ${start}`);
      }
    }
    if (len > n - pos) throw new EncodingError(`der: truncated element at offset ${start}`);
    pos += len;
    out.push(buf.subarray(start, pos));
  }
  return out;
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}
