/**
 * A small parser for the HCL subset that spiffe-helper configuration files use: `key = value`
 * attributes, strings, numbers, booleans, lists, objects and nested blocks (`name { … }`).
 *
 * @module
 */
import { ConfigError } from '@tessera/spiffe/errors';

/** A value produced by {@link parseHcl}. */
export type HclValue = string | number | boolean | HclValue[] | HclObject;
/** An HCL object (a block body or an `{ … }` literal). */
export interface HclObject {
  [key: string]: HclValue;
}

type Token =
  | { kind: 'ident'; text: string; line: number; col: number }
  | { kind: 'string'; text: string; line: number; col: number }
  | { kind: 'number'; value: number; text: string; line: number; col: number }
  | { kind: 'punct'; text: '=' | '{' | '}' | '[' | ']' | ',' | ':'; line: number; col: number }
  | { kind: 'newline'; line: number; col: number }
  | { kind: 'eof'; line: number; col: number };

function fail(line: number, col: number, message: string): never {
  throw new ConfigError('ERR_CONFIG_INVALID', `helper config: line ${line}, column ${col}: ${message}`);
}

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_.-]/;

/** Parses a number the way HCL 1 does: leading `0x` is hexadecimal, a leading `0` octal. */
function parseNumber(text: string, line: number, col: number): number {
  const sign = text.startsWith('-') ? -1 : 1;
  const body = text.replace(/^[-+]/, '');
  let value: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(body)) value = Number.parseInt(body.slice(2), 16);
  else if (/^0[0-7]+$/.test(body)) value = Number.parseInt(body.slice(1), 8);
  else if (/^(0|[1-9][0-9]*)$/.test(body)) value = Number.parseInt(body, 10);
  else if (/^(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(body)) value = Number.parseFloat(body);
  else fail(line, col, `invalid number ${JSON.stringify(text)}`);
  if (!Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value))) {
    fail(line, col, `number out of range ${JSON.stringify(text)}`);
  }
  return sign * value;
}

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const col = (): number => i - lineStart + 1;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      out.push({ kind: 'newline', line, col: col() });
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '#' || (c === '/' && src[i + 1] === '/')) {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      const startLine = line;
      const startCol = col();
      i += 2;
      while (i < src.length && !(src[i] === '*' && src[i + 1] === '/')) {
        if (src[i] === '\n') {
          line++;
          lineStart = i + 1;
        }
        i++;
      }
      if (i >= src.length) fail(startLine, startCol, 'unterminated comment');
      i += 2;
      continue;
    }
    if (c === '"') {
      const startCol = col();
      i++;
      let text = '';
      for (;;) {
        if (i >= src.length || src[i] === '\n') fail(line, startCol, 'unterminated string');
        const d = src[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\') {
          const e = src[i + 1];
          const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\' };
          if (e !== undefined && simple[e] !== undefined) {
            text += simple[e];
            i += 2;
            continue;
          }
          if (e === 'u') {
            const hex = src.slice(i + 2, i + 6);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail(line, col(), 'invalid \\u escape in string');
            text += String.fromCharCode(Number.parseInt(hex, 16));
            i += 6;
            continue;
          }
          fail(line, col(), `invalid escape ${JSON.stringify(`\\${e ?? ''}`)} in string`);
        }
        text += d;
        i++;
      }
      out.push({ kind: 'string', text, line, col: startCol });
      continue;
    }
    if (c === '<' && src[i + 1] === '<') fail(line, col(), 'heredoc strings are not supported');
    if (/[-+0-9]/.test(c)) {
      const startCol = col();
      let j = i + 1;
      while (j < src.length && /[0-9A-Za-z.+-]/.test(src[j]!)) {
        // A sign is part of the number only right after an exponent marker.
        if ((src[j] === '+' || src[j] === '-') && !/[eE]/.test(src[j - 1]!)) break;
        j++;
      }
      const text = src.slice(i, j);
      out.push({ kind: 'number', value: parseNumber(text, line, startCol), text, line, col: startCol });
      i = j;
      continue;
    }
    if (IDENT_START.test(c)) {
      const startCol = col();
      let j = i + 1;
      while (j < src.length && IDENT_PART.test(src[j]!)) j++;
      out.push({ kind: 'ident', text: src.slice(i, j), line, col: startCol });
      i = j;
      continue;
    }
    if ('={}[],:'.includes(c)) {
      out.push({ kind: 'punct', text: c as '=' | '{' | '}' | '[' | ']' | ',' | ':', line, col: col() });
      i++;
      continue;
    }
    fail(line, col(), `unexpected character ${JSON.stringify(c)}`);
  }
  out.push({ kind: 'eof', line, col: col() });
  return out;
}

function describe(t: Token): string {
  switch (t.kind) {
    case 'eof':
      return 'end of file';
    case 'newline':
      return 'end of line';
    case 'number':
      return `number ${t.text}`;
    case 'string':
      return `string ${JSON.stringify(t.text)}`;
    default:
      return JSON.stringify(t.text);
  }
}

class Parser {
  readonly #tokens: Token[];
  #pos = 0;
  /** Keys whose value came from block syntax (`name { … }`), so that repeated blocks form a list. */
  readonly #blockKeys = new WeakMap<HclObject, Set<string>>();

  constructor(tokens: Token[]) {
    this.#tokens = tokens;
  }

  #peek(): Token {
    return this.#tokens[this.#pos]!;
  }

  #next(): Token {
    return this.#tokens[this.#pos++]!;
  }

  #skipNewlines(): void {
    while (this.#peek().kind === 'newline') this.#pos++;
  }

  #isPunct(t: Token, p: string): boolean {
    return t.kind === 'punct' && t.text === p;
  }

  parseBody(closing: boolean): HclObject {
    const obj: HclObject = {};
    for (;;) {
      this.#skipNewlines();
      const t = this.#peek();
      if (closing && this.#isPunct(t, '}')) {
        this.#pos++;
        return obj;
      }
      if (t.kind === 'eof') {
        if (closing) fail(t.line, t.col, "expected '}' before end of file");
        return obj;
      }
      if (t.kind !== 'ident' && t.kind !== 'string')
        fail(t.line, t.col, `expected a key, got ${describe(t)}`);
      this.#pos++;
      const key = t.text;
      const after = this.#peek();
      let value: HclValue;
      let isBlock = false;
      if (this.#isPunct(after, '=') || this.#isPunct(after, ':')) {
        this.#pos++;
        this.#skipNewlines();
        value = this.#parseValue();
      } else if (this.#isPunct(after, '{')) {
        this.#pos++;
        value = this.parseBody(true);
        isBlock = true;
      } else {
        fail(after.line, after.col, `expected '=' after key ${JSON.stringify(key)}, got ${describe(after)}`);
      }
      this.#assign(obj, key, value, isBlock, t);
      const sep = this.#peek();
      if (this.#isPunct(sep, ',')) this.#pos++;
      else if (sep.kind !== 'newline' && sep.kind !== 'eof' && !(closing && this.#isPunct(sep, '}'))) {
        fail(
          sep.line,
          sep.col,
          `expected end of line after the value of ${JSON.stringify(key)}, got ${describe(sep)}`,
        );
      }
    }
  }

  #assign(obj: HclObject, key: string, value: HclValue, isBlock: boolean, at: Token): void {
    if (!Object.hasOwn(obj, key)) {
      Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
      if (isBlock) {
        let set = this.#blockKeys.get(obj);
        if (!set) {
          set = new Set();
          this.#blockKeys.set(obj, set);
        }
        set.add(key);
      }
      return;
    }
    // Repeated blocks with the same name collect into a list, as HCL 1 does (`jwt_svids { … }` twice).
    const blocks = this.#blockKeys.get(obj);
    if (isBlock && blocks?.has(key)) {
      const prev = obj[key]!;
      obj[key] = Array.isArray(prev) ? [...prev, value] : [prev, value];
      return;
    }
    fail(at.line, at.col, `duplicate key ${JSON.stringify(key)}`);
  }

  #parseValue(): HclValue {
    const t = this.#next();
    switch (t.kind) {
      case 'string':
        return t.text;
      case 'number':
        return t.value;
      case 'ident':
        if (t.text === 'true') return true;
        if (t.text === 'false') return false;
        return fail(t.line, t.col, `expected a value, got ${describe(t)}`);
      case 'punct':
        if (t.text === '[') return this.#parseList();
        if (t.text === '{') return this.parseBody(true);
        return fail(t.line, t.col, `expected a value, got ${describe(t)}`);
      default:
        return fail(t.line, t.col, `expected a value, got ${describe(t)}`);
    }
  }

  #parseList(): HclValue[] {
    const list: HclValue[] = [];
    for (;;) {
      this.#skipNewlines();
      const t = this.#peek();
      if (this.#isPunct(t, ']')) {
        this.#pos++;
        return list;
      }
      list.push(this.#parseValue());
      this.#skipNewlines();
      const sep = this.#peek();
      if (this.#isPunct(sep, ',')) this.#pos++;
      else if (!this.#isPunct(sep, ']'))
        fail(sep.line, sep.col, `expected ',' or ']' in list, got ${describe(sep)}`);
    }
  }
}

/**
 * Parses the HCL subset spiffe-helper configuration files use into a plain object.
 *
 * Supported: `key = value` (or `key: value`), `#`, `//` and `/* *\/` comments, double-quoted strings with
 * `\n \t \r \" \\ \uXXXX` escapes, integers (a leading `0` is octal and `0x` hexadecimal, as in HCL 1, so
 * `key_file_mode = 0600` means 0o600), floats, `true`/`false`, lists `[a, b,]`, objects `{ k = v }` and blocks
 * `name { … }` (a repeated block name collects into a list). Heredocs and interpolation are not supported.
 *
 * @param text - The file's content.
 * @returns The top-level object.
 * @throws {ConfigError} ERR_CONFIG_INVALID with the line and column of the first syntax error, or on a
 *   duplicate key.
 * @example
 * ```ts
 * parseHcl('cert_dir = "/certs"\njwt_svids = [{ jwt_audience = "db", jwt_svid_file_name = "db.jwt" }]');
 * ```
 */
export function parseHcl(text: string): HclObject {
  return new Parser(tokenize(text)).parseBody(false);
}
