/**
 * Finding: the base64 check on `SignatureValue` and `DigestValue` text (`saml-structure.ts`) was a
 * single regex, `/^[A-Za-z0-9+/\s]+={0,2}\s*$/`, that backtracks quadratically on a long run of
 * whitespace followed by any other character. It runs in the structure check, before any
 * signature work: anybody can post such a message, no key needed. 200 000 spaces held the event
 * loop (every request of the process) for 38 to 53 s per request here; a Fastify app with its
 * default 1 MiB body limit and the default `maxMessageBytes` takes the 270 KB form as it is.
 *
 * docs/threat-model.md: "never a 500, never a hang"; every attacker-controlled input bounded in time.
 *
 * The deadline below is a hang bound, not a performance assertion (as the slowloris test in
 * `test/https`): the fixed check answers in milliseconds, the quadratic one in tens of seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../../support/harness.js';
import { base64, base64url } from '../../saml/support/test-idp.js';
import {
  createAttackContext,
  outcome,
  postAcs,
  postGrant,
  samlOptions,
  startSamlApp,
  type AttackContext,
} from './saml-attack-fixture.js';

/** Whitespace then one non-base64 character: the worst case of the old regex. */
const EVIL_TEXT = `A${' '.repeat(200_000)}!`;
/** The old regex took 38 to 53 s on this input (quadratic); the fixed check takes milliseconds. */
const DEADLINE_MS = 5000;

let ctx: AttackContext;
let app: TestApp;

beforeAll(async () => {
  ctx = await createAttackContext();
  // Fastify with its defaults (1 MiB body limit) and the SAML defaults (256 KiB messages): a
  // stock deployment, no limit raised.
  app = await startSamlApp(ctx, samlOptions(ctx, { allowIdpInitiated: true }), 'fastify');
});

afterAll(async () => {
  await app?.close();
});

async function timed<T>(run: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const start = performance.now();
  const result = await run();
  return { result, ms: performance.now() - start };
}

describe('base64 text in a Signature is checked in linear time (pre-signature ReDoS)', () => {
  it('ACS: a SignatureValue of 200 000 spaces and a "!" is refused at once', async () => {
    const xml = ctx.idp.response().replace(/(<ds:SignatureValue>)[^<]*/, `$1${EVIL_TEXT}`);
    const { result, ms } = await timed(() => postAcs(app, base64(xml)));
    expect(outcome(result)).toEqual({ status: 401, code: 'ERR_SAML_SIGNATURE_INVALID' });
    expect(ms).toBeLessThan(DEADLINE_MS);
  });

  it('ACS: the same in DigestValue (checked after the algorithms) is refused at once', async () => {
    const xml = ctx.idp.response().replace(/(<ds:DigestValue>)[^<]*/, `$1${EVIL_TEXT}`);
    const { result, ms } = await timed(() => postAcs(app, base64(xml)));
    expect(outcome(result)).toEqual({ status: 401, code: 'ERR_SAML_SIGNATURE_INVALID' });
    expect(ms).toBeLessThan(DEADLINE_MS);
  });

  it('RFC 7522 grant: the same SignatureValue is refused at once with invalid_grant', async () => {
    const xml = ctx.idp.grantAssertion().replace(/(<ds:SignatureValue>)[^<]*/, `$1${EVIL_TEXT}`);
    const { result, ms } = await timed(() => postGrant(app, base64url(xml)));
    expect({ status: result.status, error: result.body['error'], code: result.body['code'] }).toEqual({
      status: 400,
      error: 'invalid_grant',
      code: 'ERR_SAML_SIGNATURE_INVALID',
    });
    expect(ms).toBeLessThan(DEADLINE_MS);
  });

  it('still accepts base64 wrapped with line breaks and padded, as IdPs send it', async () => {
    // The fix must not refuse what the old check allowed: xml-crypto and most IdPs wrap at 64/76.
    const xml = ctx.idp.response();
    const wrapped = xml.replace(/(<ds:SignatureValue>)([^<]*)/, (_m, open: string, value: string) => {
      return `${open}\n${value.replace(/(.{64})/g, '$1\n')}\n`;
    });
    expect(wrapped).not.toBe(xml);
    expect(outcome(await postAcs(app, base64(wrapped)))).toEqual({ status: 200, code: 'accepted' });
  });
});
