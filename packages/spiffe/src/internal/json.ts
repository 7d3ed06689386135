/**
 * A strict JSON (RFC 8259) parser for bundle documents (internal, never exported from a public subpath).
 *
 * Unlike `JSON.parse` it rejects duplicate object keys at every level (SPIFFE bundle maps require it), keeps
 * numbers lossless as {@link JsonNumber} (so `spiffe_sequence` can be read as a 64-bit unsigned integer), builds
 * objects without prototypes, limits nesting depth, and reports errors as {@link EncodingError}.
 *
 * @module
 */
import { EncodingError } from './pem.js';

/** A JSON number kept as its source text, so that large integers are not rounded. */
export class JsonNumber {
  /** The number exactly as written in the document. */
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  /** Tells whether the number is written as an integer (no fraction, no exponent). */
  isInteger(): boolean {
    return !/[.eE]/.test(this.text);
  }
  /** The value as a bigint; only for integers (see {@link JsonNumber.isInteger}). */
  toBigInt(): bigint {
    return BigInt(this.text);
  }
  /** The value as a JS number (may round). */
  toNumber(): number {
    return Number(this.text);
  }
}

/** A JSON object: a prototype-less record whose keys were unique in the document. */
export interface JsonObject {
  [key: string]: JsonValue;
}
/** Any JSON value. */
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;

/** Options of {@link parseJson}. */
export interface ParseJsonOptions {
  /** Maximum nesting of arrays and objects (default 64). */
  readonly maxDepth?: number;
}

/** Tells whether `v` is a JSON object (not an array, not null, not a number). */
export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses a JSON document.
 *
 * @param input text, or bytes that must be valid UTF-8
 * @throws {EncodingError} `json: …` with the offset of the problem
 */
export function parseJson(input: string | Uint8Array, options: ParseJsonOptions = {}): JsonValue {
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else {
    try {
      text = UTF8.decode(input);
    } catch {
      throw new EncodingError('json: input is not valid UTF-8');
    }
  }
  const p = new Parser(text, options.maxDepth ?? 64);
  p.skipWs();
  const v = p.value(0);
  p.skipWs();
  if (p.pos !== text.length) p.fail('unexpected data after the top-level value');
  return v;
}

class Parser {
  pos = 0;
  readonly s: string;
  readonly maxDepth: number;

  constructor(s: string, maxDepth: number) {
    this.s = s;
    this.maxDepth = maxDepth;
  }

  fail(what: string): never {
    throw new EncodingError(`json: ${what} at offset ${this.pos}`);
  }

  skipWs(): void {
    const s = this.s;
    let i = this.pos;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.pos = i;
  }

  value(depth: number): JsonValue {
    const c = this.s.charCodeAt(this.pos);
    switch (c) {
      case 0x7b: // {
        return this.object(depth + 1);
      case 0x5b: // [
        return this.array(depth + 1);
      case 0x22: // "
        return this.string();
      case 0x74: // t
        return this.literal('true', true);
      case 0x66: // f
        return this.literal('false', false);
      case 0x6e: // n
        return this.literal('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
        return this.fail(Number.isNaN(c) ? 'unexpected end of input' : 'unexpected character');
    }
  }

  literal<T extends JsonValue>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.pos)) this.fail('invalid literal');
    this.pos += word.length;
    return v;
  }

  number(): JsonNumber {
    const re = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    re.lastIndex = this.pos;
    const m = re.exec(this.s);
    if (m === null) this.fail('invalid number');
    this.pos += m[0].length;
    return new JsonNumber(m[0]);
  }

  string(): string {
    const s = this.s;
    let i = this.pos + 1;
    let out = '';
    let chunk = i;
    for (;;) {
      if (i >= s.length) {
        this.pos = i;
        this.fail('unterminated string');
      }
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        out += s.slice(chunk, i);
        this.pos = i + 1;
        return out;
      }
      if (c < 0x20) {
        this.pos = i;
        this.fail('control character in string');
      }
      if (c === 0x5c) {
        out += s.slice(chunk, i);
        const e = s.charCodeAt(i + 1);
        switch (e) {
          case 0x22:
            out += '"';
            break;
          case 0x5c:
            out += '\\';
            break;
          case 0x2f:
            out += '/';
            break;
          case 0x62:
            out += '\b';
            break;
          case 0x66:
            out += '\f';
            break;
          case 0x6e:
            out += '\n';
            break;
          case 0x72:
            out += '\r';
            break;
          case 0x74:
            out += '\t';
            break;
          case 0x75: {
            const hex = s.slice(i + 2, i + 6);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) {
              this.pos = i;
              this.fail('invalid unicode escape');
            }
            out += String.fromCharCode(Number.parseInt(hex, 16));
            i += 4;
            break;
          }
          default:
            this.pos = i;
            this.fail('invalid escape');
        }
        i += 2;
        chunk = i;
        continue;
      }
      i++;
    }
  }

  array(depth: number): JsonValue[] {
    if (depth > this.maxDepth) this.fail('nesting too deep');
    this.pos++;
    const out: JsonValue[] = [];
    this.skipWs();
    if (this.s.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipWs();
      out.push(this.value(depth));
      this.skipWs();
      const c = this.s.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        continue;
      }
      if (c === 0x5d) {
        this.pos++;
        return out;
      }
      this.fail("expected ',' or ']'");
    }
  }

  object(depth: number): JsonObject {
    if (depth > this.maxDepth) this.fail('nesting too deep');
    this.pos++;
    const out = Object.create(null) as JsonObject;
    this.skipWs();
    if (this.s.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipWs();
      if (this.s.charCodeAt(this.pos) !== 0x22) this.fail('expected a string key');
      const keyAt = this.pos;
      const key = this.string();
      if (Object.hasOwn(out, key)) {
        this.pos = keyAt;
        this.fail(`duplicate key ${JSON.stringify(key)}`);
      }
      this.skipWs();
      if (this.s.charCodeAt(this.pos) !== 0x3a) this.fail("expected ':'");
      this.pos++;
      this.skipWs();
      out[key] = this.value(depth);
      this.skipWs();
      const c = this.s.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        continue;
      }
      if (c === 0x7d) {
        this.pos++;
        return out;
      }
      this.fail("expected ',' or '}'");
    }
  }
}
