/**
 * A small DER encoder (ITU-T X.690) for the handful of ASN.1 types X.509 certificates and CSRs need.
 *
 * Every function returns a complete TLV as a `Buffer`. Only low tag numbers (< 31) are supported, which covers
 * every universal and context-specific tag used by RFC 5280 and RFC 2986.
 *
 * @module
 */

/** Universal tag bytes used by the encoder and the reader. */
export const Tag = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  t61String: 0x14,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  bmpString: 0x1e,
  sequence: 0x30,
  set: 0x31,
} as const;

/** Number of bytes the DER length octets take for a content of `len` bytes. */
function lengthOctets(len: number): number {
  if (len < 0x80) return 1;
  if (len <= 0xff) return 2;
  if (len <= 0xffff) return 3;
  if (len <= 0xffffff) return 4;
  return 5;
}

function writeLength(out: Buffer, offset: number, len: number): number {
  if (len < 0x80) {
    out[offset] = len;
    return offset + 1;
  }
  const n = lengthOctets(len) - 1;
  out[offset] = 0x80 | n;
  for (let i = n; i >= 1; i--) {
    out[offset + i] = len & 0xff;
    len = Math.floor(len / 256);
  }
  return offset + n + 1;
}

/**
 * The DER length octets for a content of `len` bytes (short form below 128, minimal long form above).
 *
 * @throws {RangeError} when `len` is negative, not an integer, or 2^32 or more.
 * @example encodeLength(300) // <82 01 2c>
 */
export function encodeLength(len: number): Buffer {
  if (!Number.isSafeInteger(len) || len < 0 || len > 0xffffffff) {
    throw new RangeError(`der: invalid length ${len}`);
  }
  const out = Buffer.allocUnsafe(lengthOctets(len));
  writeLength(out, 0, len);
  return out;
}

/**
 * A TLV with the given identifier octet and the concatenation of `contents` as its value.
 *
 * @throws {RangeError} when `tag` is not a single low-tag-number identifier octet.
 * @example tlv(0x04, Buffer.from('hi')) // OCTET STRING "hi"
 */
export function tlv(tag: number, ...contents: readonly Uint8Array[]): Buffer {
  if (!Number.isInteger(tag) || tag < 0 || tag > 0xff || (tag & 0x1f) === 0x1f) {
    throw new RangeError(`der: unsupported tag ${tag}`);
  }
  let len = 0;
  for (const c of contents) len += c.length;
  const out = Buffer.allocUnsafe(1 + lengthOctets(len) + len);
  out[0] = tag;
  let off = writeLength(out, 1, len);
  for (const c of contents) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** A SEQUENCE of already-encoded elements. @example sequence(integer(1n), nullValue()) */
export function sequence(...elements: readonly Uint8Array[]): Buffer {
  return tlv(Tag.sequence, ...elements);
}

/**
 * A SET OF already-encoded elements, sorted by their encodings as DER requires (X.690 §11.6).
 *
 * @example setOf(sequence(oid('2.5.4.3'), utf8String('x')))
 */
export function setOf(...elements: readonly Uint8Array[]): Buffer {
  const sorted = elements.length > 1 ? [...elements].sort((a, b) => Buffer.compare(a, b)) : elements;
  return tlv(Tag.set, ...sorted);
}

/** A BOOLEAN (`TRUE` is 0xff in DER). @example boolean(true) // <01 01 ff> */
export function boolean(value: boolean): Buffer {
  return Buffer.from([Tag.boolean, 1, value ? 0xff : 0x00]);
}

/** The NULL value. @example nullValue() // <05 00> */
export function nullValue(): Buffer {
  return Buffer.from([Tag.null, 0]);
}

/**
 * An INTEGER from a bigint or safe integer, in minimal two's complement.
 *
 * @throws {RangeError} when a number is not a safe integer.
 * @example integer(128n) // <02 02 00 80>
 */
export function integer(value: bigint | number): Buffer {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new RangeError(`der: integer ${value} is not a safe integer`);
  }
  let v = BigInt(value);
  const bytes: number[] = [];
  if (v === 0n) return Buffer.from([Tag.integer, 1, 0]);
  const negative = v < 0n;
  // Emit little-endian bytes of the two's complement until the sign bit is right.
  for (;;) {
    const b = Number(v & 0xffn);
    bytes.push(b);
    v >>= 8n;
    if (!negative && v === 0n && (b & 0x80) === 0) break;
    if (negative && v === -1n && (b & 0x80) !== 0) break;
  }
  return tlv(Tag.integer, Buffer.from(bytes.reverse()));
}

/**
 * A non-negative INTEGER from big-endian magnitude bytes: leading zero bytes are dropped and one 0x00 is
 * prepended when the high bit is set, so the value stays positive (as certificate serial numbers must be).
 *
 * @example unsignedInteger(Buffer.from([0x80, 1])) // <02 03 00 80 01>
 */
export function unsignedInteger(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const m = magnitude.subarray(start);
  if (m.length === 0) return Buffer.from([Tag.integer, 1, 0]);
  if ((m[0] as number) & 0x80) return tlv(Tag.integer, Buffer.from([0]), m);
  return tlv(Tag.integer, m);
}

const oidCache = new Map<string, Buffer>();

/**
 * An OBJECT IDENTIFIER from dotted-decimal text. Results are cached.
 *
 * @throws {RangeError} when the text is not a valid OID.
 * @example oid('2.5.29.19') // <06 03 55 1d 13>
 */
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  if (!/^[0-2](\.(0|[1-9][0-9]*))+$/.test(dotted)) throw new RangeError(`der: invalid oid "${dotted}"`);
  const arcs = dotted.split('.').map((a) => BigInt(a));
  const first = arcs[0] as bigint;
  const second = arcs[1] as bigint;
  if (first < 2n && second > 39n) throw new RangeError(`der: invalid oid "${dotted}"`);
  const body: number[] = [];
  const push = (arc: bigint) => {
    const tmp: number[] = [Number(arc & 0x7fn)];
    arc >>= 7n;
    while (arc > 0n) {
      tmp.push(Number(arc & 0x7fn) | 0x80);
      arc >>= 7n;
    }
    body.push(...tmp.reverse());
  };
  push(first * 40n + second);
  for (const arc of arcs.slice(2)) push(arc);
  const out = tlv(Tag.oid, Buffer.from(body));
  oidCache.set(dotted, out);
  return out;
}

/**
 * A BIT STRING with the given bytes and number of unused trailing bits in the last byte.
 *
 * @throws {RangeError} when `unusedBits` is outside 0..7, or non-zero with no content.
 * @example bitString(signatureBytes)
 */
export function bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  if (
    !Number.isInteger(unusedBits) ||
    unusedBits < 0 ||
    unusedBits > 7 ||
    (bytes.length === 0 && unusedBits)
  ) {
    throw new RangeError(`der: invalid unused bit count ${unusedBits}`);
  }
  return tlv(Tag.bitString, Buffer.from([unusedBits]), bytes);
}

/**
 * A BIT STRING for an ASN.1 NamedBitList (such as KeyUsage): bit 0 is the most significant bit of the first
 * byte, and trailing zero bits are removed as DER requires (X.690 §11.2.2).
 *
 * @throws {RangeError} when a bit number is negative or not an integer.
 * @example namedBits([0, 5]) // digitalSignature + keyCertSign: <03 02 02 84>
 */
export function namedBits(bits: Iterable<number>): Buffer {
  let highest = -1;
  const set = new Set<number>();
  for (const b of bits) {
    if (!Number.isInteger(b) || b < 0 || b > 1023) throw new RangeError(`der: invalid bit number ${b}`);
    set.add(b);
    if (b > highest) highest = b;
  }
  if (highest < 0) return Buffer.from([Tag.bitString, 1, 0]);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const b of set) bytes[b >> 3] = (bytes[b >> 3] as number) | (0x80 >> (b & 7));
  return bitString(bytes, 7 - (highest & 7));
}

/** An OCTET STRING. @example octetString(Buffer.from([1, 2])) */
export function octetString(bytes: Uint8Array): Buffer {
  return tlv(Tag.octetString, bytes);
}

/** A UTF8String. @example utf8String('Tessera') */
export function utf8String(text: string): Buffer {
  return tlv(Tag.utf8String, Buffer.from(text, 'utf8'));
}

/**
 * A PrintableString.
 *
 * @throws {RangeError} when the text has characters outside the PrintableString set.
 * @example printableString('US')
 */
export function printableString(text: string): Buffer {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)) {
    throw new RangeError(`der: "${text}" is not a printable string`);
  }
  return tlv(Tag.printableString, Buffer.from(text, 'latin1'));
}

/**
 * An IA5String (ASCII), as used by URI and DNS names.
 *
 * @throws {RangeError} when the text is not ASCII.
 * @example ia5String('spiffe://example.org/x')
 */
export function ia5String(text: string): Buffer {
  return tlv(Tag.ia5String, ia5Bytes(text));
}

/**
 * The bytes of an IA5 (ASCII) string.
 *
 * @throws {RangeError} when the text is not ASCII.
 * @example ia5Bytes('example.org')
 */
export function ia5Bytes(text: string): Buffer {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) throw new RangeError(`der: "${text}" is not an ia5 string`);
  }
  return Buffer.from(text, 'latin1');
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function checkDate(date: Date): number {
  const ms = date.getTime();
  if (Number.isNaN(ms)) throw new RangeError('der: invalid date');
  const year = date.getUTCFullYear();
  if (year < 0 || year > 9999) throw new RangeError(`der: year ${year} cannot be encoded`);
  return year;
}

function timeDigits(date: Date): string {
  return (
    pad(date.getUTCMonth() + 1, 2) +
    pad(date.getUTCDate(), 2) +
    pad(date.getUTCHours(), 2) +
    pad(date.getUTCMinutes(), 2) +
    pad(date.getUTCSeconds(), 2)
  );
}

/**
 * A UTCTime `YYMMDDHHMMSSZ` (RFC 5280 §4.1.2.5.1); fractional seconds are dropped.
 *
 * @throws {RangeError} when the date is invalid or outside 1950..2049.
 * @example utcTime(new Date('2030-01-02T03:04:05Z')) // "300102030405Z"
 */
export function utcTime(date: Date): Buffer {
  const year = checkDate(date);
  if (year < 1950 || year > 2049) throw new RangeError(`der: year ${year} cannot be a utc time`);
  return tlv(Tag.utcTime, Buffer.from(`${pad(year % 100, 2)}${timeDigits(date)}Z`, 'latin1'));
}

/**
 * A GeneralizedTime `YYYYMMDDHHMMSSZ` (RFC 5280 §4.1.2.5.2); fractional seconds are dropped.
 *
 * @throws {RangeError} when the date is invalid or its year is outside 0..9999.
 * @example generalizedTime(new Date('2050-01-01T00:00:00Z')) // "20500101000000Z"
 */
export function generalizedTime(date: Date): Buffer {
  const year = checkDate(date);
  return tlv(Tag.generalizedTime, Buffer.from(`${pad(year, 4)}${timeDigits(date)}Z`, 'latin1'));
}

/**
 * A certificate validity Time as RFC 5280 requires: UTCTime through 2049, GeneralizedTime from 2050.
 *
 * @throws {RangeError} when the date is invalid or cannot be encoded.
 * @example x509Time(new Date('2049-12-31T23:59:59Z')) // UTCTime
 */
export function x509Time(date: Date): Buffer {
  const year = checkDate(date);
  return year >= 1950 && year <= 2049 ? utcTime(date) : generalizedTime(date);
}

/**
 * An EXPLICIT context-specific tag `[n]` wrapping already-encoded elements (constructed).
 *
 * @throws {RangeError} when `n` is outside 0..30.
 * @example explicit(0, integer(2)) // the certificate version field
 */
export function explicit(n: number, ...elements: readonly Uint8Array[]): Buffer {
  checkTagNumber(n);
  return tlv(0xa0 | n, ...elements);
}

/**
 * An IMPLICIT context-specific tag `[n]` with raw content bytes; `constructed` for SEQUENCE/SET bases.
 *
 * @throws {RangeError} when `n` is outside 0..30.
 * @example implicit(6, Buffer.from('spiffe://example.org/x')) // GeneralName uniformResourceIdentifier
 */
export function implicit(n: number, content: Uint8Array, constructed = false): Buffer {
  checkTagNumber(n);
  return tlv((constructed ? 0xa0 : 0x80) | n, content);
}

function checkTagNumber(n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new RangeError(`der: invalid context tag number ${n}`);
}
