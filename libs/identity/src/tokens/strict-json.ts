/**
 * A strict JSON reader for JOSE headers and JWT claims sets.
 *
 * Why not `JSON.parse` alone: it keeps the *last* of two members with the same name, so
 * `{"sub":"alice","sub":"admin"}` reads as `admin` here and maybe as `alice` in another library
 * that saw the same bytes (RFC 7515 §4 and RFC 7519 §4: a JOSE header or claims set with
 * duplicate member names MUST be rejected, or only the lexically last kept; we reject).
 * Names are compared after unescaping, so `"s\u0075b"` is the same member as `"sub"`.
 *
 * This scanner validates the grammar of RFC 8259, rejects duplicate member names in every
 * object at every depth, bounds the nesting depth, and then lets `JSON.parse` build the value
 * (the two agree on what is valid JSON, and the native parser builds values faster).
 */

/** Why a text was refused. */
export type StrictJsonFailure = 'syntax' | 'duplicate' | 'depth';

/** Thrown by {@link parseStrictJson}; `kind` says why. Carries no part of the input. */
export class StrictJsonError extends Error {
  override readonly name = 'StrictJsonError';
  constructor(readonly kind: StrictJsonFailure) {
    super(`JSON refused: ${kind}`);
  }
}

/** Deepest nesting accepted. JOSE headers and access-token claims are shallow. */
export const MAX_JSON_DEPTH = 32;

const enum Ch {
  Tab = 0x09,
  Lf = 0x0a,
  Cr = 0x0d,
  Space = 0x20,
  Quote = 0x22,
  Plus = 0x2b,
  Comma = 0x2c,
  Minus = 0x2d,
  Dot = 0x2e,
  Zero = 0x30,
  Nine = 0x39,
  Colon = 0x3a,
  OpenBracket = 0x5b,
  Backslash = 0x5c,
  CloseBracket = 0x5d,
  OpenBrace = 0x7b,
  CloseBrace = 0x7d,
}

class Scanner {
  pos = 0;
  constructor(private readonly s: string) {}

  fail(kind: StrictJsonFailure = 'syntax'): never {
    throw new StrictJsonError(kind);
  }

  ws(): void {
    const s = this.s;
    let c = s.charCodeAt(this.pos);
    while (c === Ch.Space || c === Ch.Tab || c === Ch.Lf || c === Ch.Cr) c = s.charCodeAt(++this.pos);
  }

  value(depth: number): void {
    this.ws();
    const c = this.s.charCodeAt(this.pos);
    if (c === Ch.OpenBrace) return this.object(depth + 1);
    if (c === Ch.OpenBracket) return this.array(depth + 1);
    if (c === Ch.Quote) {
      this.string();
      return;
    }
    if (c === Ch.Minus || (c >= Ch.Zero && c <= Ch.Nine)) return this.number();
    if (this.s.startsWith('true', this.pos)) this.pos += 4;
    else if (this.s.startsWith('false', this.pos)) this.pos += 5;
    else if (this.s.startsWith('null', this.pos)) this.pos += 4;
    else this.fail();
  }

  object(depth: number): void {
    if (depth > MAX_JSON_DEPTH) this.fail('depth');
    this.pos++; // {
    this.ws();
    if (this.s.charCodeAt(this.pos) === Ch.CloseBrace) {
      this.pos++;
      return;
    }
    const seen = new Set<string>();
    for (;;) {
      this.ws();
      if (this.s.charCodeAt(this.pos) !== Ch.Quote) this.fail();
      const name = this.string();
      if (seen.has(name)) this.fail('duplicate');
      seen.add(name);
      this.ws();
      if (this.s.charCodeAt(this.pos) !== Ch.Colon) this.fail();
      this.pos++;
      this.value(depth);
      this.ws();
      const c = this.s.charCodeAt(this.pos);
      this.pos++;
      if (c === Ch.CloseBrace) return;
      if (c !== Ch.Comma) this.fail();
    }
  }

  array(depth: number): void {
    if (depth > MAX_JSON_DEPTH) this.fail('depth');
    this.pos++; // [
    this.ws();
    if (this.s.charCodeAt(this.pos) === Ch.CloseBracket) {
      this.pos++;
      return;
    }
    for (;;) {
      this.value(depth);
      this.ws();
      const c = this.s.charCodeAt(this.pos);
      this.pos++;
      if (c === Ch.CloseBracket) return;
      if (c !== Ch.Comma) this.fail();
    }
  }

  /** Reads a string token and returns its unescaped value. */
  string(): string {
    const s = this.s;
    const start = this.pos;
    let escaped = false;
    this.pos++; // opening quote
    for (;;) {
      const c = s.charCodeAt(this.pos);
      if (Number.isNaN(c) || c < Ch.Space) this.fail(); // unterminated, or a raw control character
      if (c === Ch.Quote) break;
      if (c === Ch.Backslash) {
        escaped = true;
        const e = s.charCodeAt(this.pos + 1);
        if (e === 0x75 /* u */) {
          if (!/^[0-9a-fA-F]{4}$/.test(s.slice(this.pos + 2, this.pos + 6))) this.fail();
          this.pos += 6;
          continue;
        }
        // " \ / b f n r t
        if (
          e !== Ch.Quote &&
          e !== Ch.Backslash &&
          e !== 0x2f &&
          e !== 0x62 &&
          e !== 0x66 &&
          e !== 0x6e &&
          e !== 0x72 &&
          e !== 0x74
        )
          this.fail();
        this.pos += 2;
        continue;
      }
      this.pos++;
    }
    this.pos++; // closing quote
    // Only escaped names need decoding; the grammar is already checked, so JSON.parse cannot fail.
    return escaped ? (JSON.parse(s.slice(start, this.pos)) as string) : s.slice(start + 1, this.pos - 1);
  }

  number(): void {
    const s = this.s;
    if (s.charCodeAt(this.pos) === Ch.Minus) this.pos++;
    const first = s.charCodeAt(this.pos);
    if (first === Ch.Zero) this.pos++;
    else if (first > Ch.Zero && first <= Ch.Nine) this.digits();
    else this.fail();
    if (s.charCodeAt(this.pos) === Ch.Dot) {
      this.pos++;
      if (!this.digits()) this.fail();
    }
    const e = s.charCodeAt(this.pos);
    if (e === 0x65 || e === 0x45) {
      this.pos++;
      const sign = s.charCodeAt(this.pos);
      if (sign === Ch.Plus || sign === Ch.Minus) this.pos++;
      if (!this.digits()) this.fail();
    }
  }

  digits(): boolean {
    const start = this.pos;
    let c = this.s.charCodeAt(this.pos);
    while (c >= Ch.Zero && c <= Ch.Nine) c = this.s.charCodeAt(++this.pos);
    return this.pos > start;
  }
}

/**
 * Parses `text` as RFC 8259 JSON, refusing duplicate member names at any depth and nesting
 * deeper than {@link MAX_JSON_DEPTH}. Throws {@link StrictJsonError}.
 */
export function parseStrictJson(text: string): unknown {
  const scanner = new Scanner(text);
  scanner.value(0);
  scanner.ws();
  if (scanner.pos !== text.length) scanner.fail();
  return JSON.parse(text) as unknown;
}
