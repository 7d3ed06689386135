/**
 * A minimal, strict DER reader: bounds-checked, definite minimal lengths only, low tag numbers only.
 * It is used to pull raw pieces out of certificates (subject name, key identifier) and to parse CSRs.
 *
 * @module
 */

/** A malformed DER input. Callers convert it into their own error type. */
export class DerError extends Error {
  override name = 'DerError';
}

/** One decoded TLV. `content` and `raw` are views into the input (no copy). */
export interface DerElement {
  /** The identifier octet. */
  readonly tag: number;
  /** The content octets. */
  readonly content: Buffer;
  /** The whole TLV, header included. */
  readonly raw: Buffer;
}

/** Reads consecutive TLVs from a buffer region. */
export class DerReader {
  readonly #buf: Buffer;
  #pos: number;
  readonly #end: number;

  /** A reader over `buf` (the whole buffer, or an element's content). */
  constructor(buf: Buffer) {
    this.#buf = buf;
    this.#pos = 0;
    this.#end = buf.length;
  }

  /** Whether every byte has been read. */
  atEnd(): boolean {
    return this.#pos >= this.#end;
  }

  /** The identifier octet of the next element, or `undefined` at the end. */
  peekTag(): number | undefined {
    return this.#pos < this.#end ? this.#buf[this.#pos] : undefined;
  }

  /**
   * Reads the next element; when `tag` is given it must match.
   *
   * @throws {DerError} on truncated input, bad lengths, high tag numbers or a tag mismatch.
   */
  read(tag?: number, what = 'element'): DerElement {
    const buf = this.#buf;
    const start = this.#pos;
    if (start >= this.#end) throw new DerError(`missing ${what}`);
    const t = buf[start] as number;
    if ((t & 0x1f) === 0x1f) throw new DerError(`unsupported high tag number in ${what}`);
    if (tag !== undefined && t !== tag) {
      throw new DerError(`expected tag 0x${hex(tag)} for ${what}, got 0x${hex(t)}`);
    }
    if (start + 1 >= this.#end) throw new DerError(`truncated ${what}`);
    let len = buf[start + 1] as number;
    let off = start + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0) throw new DerError(`indefinite length in ${what}`);
      if (n > 4) throw new DerError(`length too large in ${what}`);
      if (off + n > this.#end) throw new DerError(`truncated ${what}`);
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (buf[off + i] as number);
      if (buf[off] === 0 || len < 0x80) throw new DerError(`non-minimal length in ${what}`);
      off += n;
    }
    if (off + len > this.#end) throw new DerError(`truncated ${what}`);
    this.#pos = off + len;
    return { tag: t, content: buf.subarray(off, off + len), raw: buf.subarray(start, off + len) };
  }

  /** Reads the next element only if its identifier octet is `tag`. */
  readOptional(tag: number, what = 'element'): DerElement | undefined {
    return this.peekTag() === tag ? this.read(tag, what) : undefined;
  }

  /**
   * Asserts that nothing is left.
   *
   * @throws {DerError} when bytes remain.
   */
  end(what = 'element'): void {
    if (!this.atEnd()) throw new DerError(`trailing data after ${what}`);
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/**
 * Reads exactly one element from `buf`.
 *
 * @throws {DerError} when the input is malformed, the tag differs, or bytes follow it.
 */
export function readOne(buf: Buffer, tag: number | undefined, what: string): DerElement {
  const r = new DerReader(buf);
  const el = r.read(tag, what);
  r.end(what);
  return el;
}

/**
 * Decodes an OBJECT IDENTIFIER's content octets into dotted-decimal text.
 *
 * @throws {DerError} when the encoding is empty, unterminated or not minimal.
 */
export function decodeOid(content: Buffer): string {
  if (content.length === 0) throw new DerError('empty oid');
  const arcs: bigint[] = [];
  let v = 0n;
  let started = false;
  for (let i = 0; i < content.length; i++) {
    const b = content[i] as number;
    if (!started && b === 0x80) throw new DerError('non-minimal oid');
    started = true;
    v = (v << 7n) | BigInt(b & 0x7f);
    if ((b & 0x80) === 0) {
      arcs.push(v);
      v = 0n;
      started = false;
    }
  }
  if (started) throw new DerError('unterminated oid');
  const first = arcs[0] as bigint;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

/**
 * Decodes a BIT STRING's content octets; returns the bytes and the unused bit count.
 *
 * @throws {DerError} when the unused-bit count is invalid or the padding bits are not zero.
 */
export function decodeBitString(content: Buffer): { bytes: Buffer; unusedBits: number } {
  if (content.length === 0) throw new DerError('empty bit string');
  const unusedBits = content[0] as number;
  if (unusedBits > 7 || (content.length === 1 && unusedBits !== 0)) throw new DerError('invalid bit string');
  const bytes = content.subarray(1);
  if (unusedBits && (bytes[bytes.length - 1] as number) & ((1 << unusedBits) - 1)) {
    throw new DerError('non-zero padding bits in bit string');
  }
  return { bytes, unusedBits };
}
