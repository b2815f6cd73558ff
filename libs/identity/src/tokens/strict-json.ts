/**
 * A strict JSON reader for JOSE headers and JWT claims sets.
 *
 * Why not `JSON.parse` alone: it keeps the *last* of two members with the same name, so
 * `{"sub":"alice","sub":"admin"}` reads as `admin` here and maybe as `alice` in another library
 * that saw the same bytes (RFC 7515 §4 and RFC 7519 §4: a JOSE header or claims set with
 * duplicate member names MUST be rejected, or only the lexically last kept; we reject).
 * Names are compared after unescaping, so `"s\u0075b"` is the same member as `"sub"`.
 *
 * See {@link parseStrictJson} for how: the native parser checks the grammar and builds the value;
 * a scan of the text around it bounds the nesting and finds repeated names.
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

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * Parses `text` as RFC 8259 JSON, refusing duplicate member names at any depth and nesting
 * deeper than {@link MAX_JSON_DEPTH}. Throws {@link StrictJsonError}.
 *
 * Two ways, both around the native parser. Text without a backslash (every token we have seen)
 * takes the cheaper one, {@link parseUnescaped}. Any other text, in two cheap passes:
 * 1. one scan of the text, outside strings, bounds the nesting (before `JSON.parse` sees it) and
 *    counts the name separators: in JSON text, a `:` outside a string separates a member's name
 *    from its value and appears nowhere else, so their number is the number of members written;
 * 2. `JSON.parse` checks the grammar (ECMA-404, the same grammar as RFC 8259) and builds the
 *    value; a syntax error is refused as such;
 * 3. the members of the value are counted: an object keeps one member per distinct name (after
 *    unescaping: `"s\u0075b"` is `"sub"`), so fewer members than were written means a name was
 *    repeated somewhere.
 */
export function parseStrictJson(text: string): unknown {
  return text.indexOf('\\') === -1 ? parseUnescaped(text) : parseWithScan(text);
}

/**
 * A text without a backslash has no escape anywhere, so each of its strings holds exactly the
 * characters written between its quotes. Then the `:` of the text are the name separators plus
 * the `:` inside strings, and both can be counted on the parsed value: what was written (found
 * by `indexOf`, native) must equal, for every member kept, one separator plus the colons of its
 * name, plus the colons of every string value. A repeated name loses a member (its separator at
 * least) and can never balance. The nesting is bounded on the value (`JSON.parse` itself is
 * iterative in V8: no depth reaches a stack limit there), before any recursion.
 */
function parseUnescaped(text: string): unknown {
  const written = colonsIn(text);
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    throw new StrictJsonError('syntax');
  }
  if (written !== colonsOf(value, 0)) throw new StrictJsonError('duplicate');
  return value;
}

/** Name separators and colons inside strings of a parsed value; refuses nesting too deep. */
function colonsOf(value: unknown, depth: number): number {
  if (typeof value === 'string') return colonsIn(value);
  if (typeof value !== 'object' || value === null) return 0;
  if (++depth > MAX_JSON_DEPTH) throw new StrictJsonError('depth');
  let count = 0;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) count += colonsOf(value[i], depth);
    return count;
  }
  for (const key of Object.keys(value)) {
    count += 1 + colonsIn(key) + colonsOf((value as Record<string, unknown>)[key], depth);
  }
  return count;
}

/** The `:` of a string, found by `indexOf`. */
function colonsIn(text: string): number {
  let count = 0;
  for (let i = text.indexOf(':'); i !== -1; i = text.indexOf(':', i + 1)) count++;
  return count;
}

/** Any text: one scan outside strings (nesting, separators), then the native parser. */
function parseWithScan(text: string): unknown {
  let written = 0;
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // Skip the string: its escapes (`\"`, `\\`) never end it. An unterminated string runs to
      // the end, where JSON.parse refuses it.
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === BACKSLASH) i++;
        else if (d === QUOTE) break;
      }
    } else if (c === COLON) written++;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > MAX_JSON_DEPTH) throw new StrictJsonError('depth');
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
  }
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    throw new StrictJsonError('syntax');
  }
  if (written !== (written === 0 ? 0 : membersOf(value))) throw new StrictJsonError('duplicate');
  return value;
}

/** Members of every object in a parsed value (its nesting is bounded by the scan). */
function membersOf(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  let count = 0;
  if (Array.isArray(value)) {
    for (const item of value) count += membersOf(item);
    return count;
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    count += 1 + membersOf((value as Record<string, unknown>)[key]);
  }
  return count;
}
