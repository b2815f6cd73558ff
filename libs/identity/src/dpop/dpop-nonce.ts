import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * RFC 9449 §8.2: hands the current nonce out with a successful response too, so a client keeps
 * up with rotations without a `use_dpop_nonce` round trip. Express/Node (`setHeader`) and Fastify
 * (`header`) responses; anything else is left alone.
 */
export function sendDpopNonce(response: unknown, nonce: string): void {
  const r = response as {
    setHeader?: unknown;
    header?: unknown;
    headersSent?: unknown;
    sent?: unknown;
  } | null;
  if (r === null || typeof r !== 'object' || r.headersSent === true || r.sent === true) return;
  if (typeof r.setHeader === 'function')
    (r.setHeader as (n: string, v: string) => void).call(r, 'DPoP-Nonce', nonce);
  else if (typeof r.header === 'function')
    (r.header as (n: string, v: string) => void).call(r, 'DPoP-Nonce', nonce);
}

/**
 * RFC 9449 §8 server nonces without server state: the nonce of a time step is an HMAC of that
 * step under a secret, so every replica with the same secret issues and accepts the same nonces.
 * The current and the previous step's nonces are accepted (a client that just received one keeps
 * working across a rotation). Each step's nonce is computed once.
 */
export class DpopNonces {
  private step = Number.NaN;
  private pair: readonly [current: Buffer, previous: Buffer] = [Buffer.alloc(0), Buffer.alloc(0)];
  private currentText = '';

  constructor(
    private readonly secret: Uint8Array,
    private readonly rotationMs: number,
  ) {}

  /** The nonce to hand out now (the `DPoP-Nonce` header). */
  current(nowMs: number): string {
    this.advance(nowMs);
    return this.currentText;
  }

  /** Whether `nonce` is the current or the previous step's nonce (constant time). */
  accepts(nonce: string, nowMs: number): boolean {
    this.advance(nowMs);
    const given = Buffer.from(nonce, 'utf8');
    let ok = false;
    for (const expected of this.pair) {
      if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true;
    }
    return ok;
  }

  private advance(nowMs: number): void {
    const step = Math.floor(nowMs / this.rotationMs);
    if (step === this.step) return;
    const current = Buffer.from(this.nonceOf(step), 'utf8');
    const previous = step === this.step + 1 ? this.pair[0] : Buffer.from(this.nonceOf(step - 1), 'utf8');
    this.step = step;
    this.pair = [current, previous];
    this.currentText = current.toString('utf8');
  }

  private nonceOf(step: number): string {
    // 128 bits of the HMAC are plenty for a value that only has to be unguessable for a step.
    return createHmac('sha256', this.secret)
      .update(`inference-shield dpop nonce ${step}`)
      .digest()
      .subarray(0, 16)
      .toString('base64url');
  }
}
