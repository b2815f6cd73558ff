import {
  SAML,
  SamlStatusError,
  ValidateInResponseTo,
  type Profile,
  type SamlConfig,
} from '@node-saml/node-saml';
import { isShieldError, ShieldError, type ShieldErrorCode } from '@inference-shield/core/internal';
import type { Element } from '@xmldom/xmldom';
import { readVerifiedAssertion, type VerifiedAssertion } from './saml-assertion.js';
import { mapSamlAttributes } from './saml-claims.js';
import type { ResolvedSamlIdentityProvider, ResolvedSamlOptions } from './saml-options.interface.js';
import type { SamlPrincipal } from './saml-principal.interface.js';
import { SAML_PROTOCOL_NS, STATUS_SUCCESS } from './saml.constants.js';
import { childrenNamed, decodeSamlMessage, inspectSamlXml, type SamlMessageFacts } from './saml-structure.js';

/** The node-saml verifiers of one IdP, built once at start-up. */
interface IdpVerifiers {
  readonly idp: ResolvedSamlIdentityProvider;
  /** For responses that carry their own signature (which must then verify) or must carry one. */
  readonly acsSignedResponse: SAML;
  /** For unsigned responses (the assertion signature still required). */
  readonly acsUnsignedResponse: SAML;
  /** For RFC 7522 grant assertions (audience and recipient of the token endpoint). */
  readonly grant: SAML | undefined;
}

/** Which way in a message came, which decides its expected `Recipient` and `Audience`. */
type Way = 'acs' | 'grant';

/** A synthetic `Response` ID around a grant assertion; the structure check keeps it unique. */
const GRANT_WRAPPER_ID = '_shield_rfc7522_wrapper';

/**
 * Validates SAML messages for one configuration: our structure checks, then node-saml's signature
 * and condition checks with the pinned certificates only, then the checks node-saml leaves open
 * (Destination, Recipient, Issuer, status, InResponseTo, replay), all read from verified content.
 *
 * @example
 * const validator = new SamlValidator(resolveSamlOptions(raw));
 * const principal = await validator.validateSamlResponse(req.body.SAMLResponse);
 */
export class SamlValidator {
  private readonly byEntityId: ReadonlyMap<string, IdpVerifiers>;

  constructor(private readonly options: ResolvedSamlOptions) {
    const map = new Map<string, IdpVerifiers>();
    for (const idp of options.identityProviders) {
      const base = this.nodeSamlOptions(idp);
      map.set(idp.entityId, {
        idp,
        acsSignedResponse: new SAML({ ...base, wantAuthnResponseSigned: true }),
        acsUnsignedResponse: new SAML({ ...base, wantAuthnResponseSigned: false }),
        grant:
          idp.allowBearerGrant && options.grant !== undefined
            ? new SAML({
                ...base,
                callbackUrl: options.grant.tokenEndpointUrl,
                audience: options.grant.audience,
                wantAuthnResponseSigned: false,
              })
            : undefined,
      });
    }
    this.byEntityId = map;
  }

  /**
   * Browser SSO (HTTP-POST binding): validates the base64 `SAMLResponse` posted to our ACS and
   * returns the principal, or throws a `ShieldError` with an `ERR_SAML_*` code.
   */
  async validateSamlResponse(samlResponse: unknown): Promise<SamlPrincipal> {
    const xml = decodeSamlMessage(samlResponse, this.options.maxMessageBytes, 'base64');
    const facts = inspectSamlXml(xml, 'response');
    const v = this.verifiersFor(facts);
    if (facts.responseIssuer !== undefined && facts.responseIssuer !== v.idp.entityId) {
      throw new ShieldError('ERR_SAML_ISSUER_INVALID', {
        detail: 'Response Issuer is not the assertion IdP',
      });
    }
    if (v.idp.requireSignedResponse && !facts.responseSigned) {
      throw new ShieldError('ERR_SAML_SIGNATURE_INVALID', { detail: 'Response must be signed' });
    }
    // A signature that is present must verify, even where only the assertion one is required.
    const saml = facts.responseSigned ? v.acsSignedResponse : v.acsUnsignedResponse;
    const profile = await verifyWithNodeSaml(saml, facts.xml);
    const assertion = this.readAndCrossCheck(profile, facts, v.idp);

    // Read only now, from the same DOM the structure check walked: the status sits outside the
    // assertion, and node-saml ignores it whenever an assertion is present (gap).
    if (!topLevelStatusIsSuccess(facts)) {
      throw new ShieldError('ERR_SAML_STATUS_NOT_SUCCESS');
    }
    // SAML bindings §3.5.5.2: the Destination must be the URL the message was delivered to (gap).
    if (facts.destination !== this.options.serviceProvider.acsUrl) {
      throw new ShieldError('ERR_SAML_DESTINATION_INVALID');
    }
    this.checkAssertion(assertion, 'acs');

    // SAML profiles §4.1.4.2: an answer to our AuthnRequest names it in the signed bearer data. A
    // Response-level InResponseTo counts only under the Response signature: on an unsigned Response
    // it is attacker-written, and passed an unsolicited assertion off as the answer to a login the
    // attacker started himself (GET /saml/login), defeating `allowIdpInitiated: false`.
    if (
      facts.inResponseTo !== undefined &&
      assertion.bearer.inResponseTo === undefined &&
      !facts.responseSigned
    ) {
      throw new ShieldError('ERR_SAML_IN_RESPONSE_TO_INVALID', {
        detail: 'InResponseTo only on the unsigned Response',
      });
    }
    const requestId = assertion.bearer.inResponseTo ?? facts.inResponseTo;
    if (
      facts.inResponseTo !== undefined &&
      assertion.bearer.inResponseTo !== undefined &&
      facts.inResponseTo !== assertion.bearer.inResponseTo
    ) {
      throw new ShieldError('ERR_SAML_IN_RESPONSE_TO_INVALID', { detail: 'Response and assertion disagree' });
    }
    // Replay first, so a replayed response is reported as such whatever its InResponseTo.
    const expiresAt = this.expiryOf(assertion);
    await this.consumeOnce(v.idp, assertion, expiresAt);
    if (requestId === undefined) {
      if (!v.idp.allowIdpInitiated) {
        throw new ShieldError('ERR_SAML_IN_RESPONSE_TO_INVALID', { detail: 'unsolicited response refused' });
      }
    } else {
      // SAML profiles §4.1.4.3: answers a request we sent to this IdP, once.
      const sentTo = await this.options.requestStore.take(requestId);
      if (sentTo !== v.idp.name) {
        throw new ShieldError('ERR_SAML_IN_RESPONSE_TO_INVALID', {
          detail: 'unknown, used or foreign request',
        });
      }
    }
    return this.principal(v.idp, assertion, expiresAt);
  }

  /**
   * RFC 7522 SAML 2.0 bearer assertion grant: validates the base64url `assertion` parameter and
   * returns the principal, or throws a `ShieldError` with an `ERR_SAML_*` code.
   *
   * `requestedScopes` (the grant's RFC 6749 §3.3 `scope`) must all be scopes the assertion maps
   * to, else `ERR_SAML_SCOPE_INVALID`; that check comes before the assertion is spent, so a
   * client that asked for too much can ask again with the same assertion.
   */
  async validateSamlBearerAssertion(
    assertionParam: unknown,
    requestedScopes?: readonly string[],
  ): Promise<SamlPrincipal> {
    const grant = this.options.grant;
    if (grant === undefined)
      throw new ShieldError('ERR_SAML_GRANT_INVALID', { detail: 'grant not configured' });
    const xml = decodeSamlMessage(assertionParam, this.options.maxMessageBytes, 'base64url');
    const facts = inspectSamlXml(xml, 'assertion');
    const v = this.verifiersFor(facts);
    if (v.grant === undefined) {
      throw new ShieldError('ERR_SAML_ISSUER_INVALID', { detail: 'IdP not allowed for the bearer grant' });
    }
    if (facts.assertionId === GRANT_WRAPPER_ID) throw new ShieldError('ERR_SAML_STRUCTURE_INVALID');
    // node-saml only reads assertions inside a Response: wrap the assertion, unchanged, in a bare
    // one. Exclusive c14n (the only one accepted) makes the digest independent of the wrapper.
    const body = xml.replace(/^\s*<\?xml\s[^?]*\?>/, '');
    const wrapped =
      `<samlp:Response xmlns:samlp="${SAML_PROTOCOL_NS}" ID="${GRANT_WRAPPER_ID}" Version="2.0" ` +
      `IssueInstant="${new Date().toISOString()}"><samlp:Status><samlp:StatusCode Value="${STATUS_SUCCESS}"/>` +
      `</samlp:Status>${body}</samlp:Response>`;
    const profile = await verifyWithNodeSaml(v.grant, wrapped);
    const assertion = this.readAndCrossCheck(profile, facts, v.idp);
    this.checkAssertion(assertion, 'grant');
    // A grant assertion answers no AuthnRequest: one that does was issued for browser SSO.
    if (assertion.bearer.inResponseTo !== undefined) {
      throw new ShieldError('ERR_SAML_IN_RESPONSE_TO_INVALID', {
        detail: 'grant assertion answers a request',
      });
    }
    const expiresAt = this.expiryOf(assertion);
    const principal = this.principal(v.idp, assertion, expiresAt);
    // RFC 6749 §5.2 invalid_scope: refused before the assertion is spent (it was not used).
    if (requestedScopes !== undefined && requestedScopes.some((s) => !principal.scopes.includes(s))) {
      throw new ShieldError('ERR_SAML_SCOPE_INVALID');
    }
    await this.consumeOnce(v.idp, assertion, expiresAt);
    return principal;
  }

  private nodeSamlOptions(idp: ResolvedSamlIdentityProvider): SamlConfig {
    const certs = idp.signingCertificates.map((cert, i) => ({
      pem: idp.signingCertificatePems[i] as string,
      from: new Date(cert.validFrom).getTime(),
      to: new Date(cert.validTo).getTime(),
    }));
    return {
      callbackUrl: this.options.serviceProvider.acsUrl,
      issuer: this.options.serviceProvider.entityId,
      audience: this.options.serviceProvider.audience,
      // Only the pinned certificates, and only while valid: KeyInfo in the message never picks the key.
      idpCert: (cb: (err: Error | null, certs?: string[]) => void): void => {
        const now = Date.now();
        cb(
          null,
          certs.filter((c) => c.from <= now && now < c.to).map((c) => c.pem),
        );
      },
      idpIssuer: idp.entityId,
      wantAssertionsSigned: true,
      acceptedClockSkewMs: this.options.clockSkewMs,
      maxAssertionAgeMs: this.options.maxAssertionAgeMs,
      // InResponseTo is ours (atomic, shared store, checked on verified values); see validateSamlResponse.
      validateInResponseTo: ValidateInResponseTo.never,
    };
  }

  /** The unverified Issuer only chooses whose pinned certificates verify the signature. */
  private verifiersFor(facts: SamlMessageFacts): IdpVerifiers {
    const v = this.byEntityId.get(facts.assertionIssuer);
    if (v === undefined) throw new ShieldError('ERR_SAML_ISSUER_INVALID', { detail: 'unknown IdP' });
    return v;
  }

  private readAndCrossCheck(
    profile: Profile,
    facts: SamlMessageFacts,
    idp: ResolvedSamlIdentityProvider,
  ): VerifiedAssertion {
    const xml = profile.getAssertionXml?.();
    if (typeof xml !== 'string')
      throw new ShieldError('ERR_SAML_SIGNATURE_INVALID', { detail: 'no verified XML' });
    const assertion = readVerifiedAssertion(xml);
    if (assertion.id !== facts.assertionId) {
      throw new ShieldError('ERR_SAML_STRUCTURE_INVALID', { detail: 'verified assertion is another one' });
    }
    if (assertion.issuer !== idp.entityId) throw new ShieldError('ERR_SAML_ISSUER_INVALID');
    // A comment-truncated or otherwise rewritten NameID shows up as a difference between what was
    // signed, what node-saml read and what the raw message holds: never pick one of them.
    if (assertion.nameId !== facts.nameId || profile.nameID !== assertion.nameId) {
      throw new ShieldError('ERR_SAML_STRUCTURE_INVALID', { detail: 'NameID differs between parses' });
    }
    return assertion;
  }

  /** Recipient, times and audience of the verified assertion (node-saml checks some; all re-checked here). */
  private checkAssertion(a: VerifiedAssertion, way: Way): void {
    const now = Date.now();
    const skew = this.options.clockSkewMs;
    const grant = this.options.grant;
    const expectedRecipient = way === 'acs' ? this.options.serviceProvider.acsUrl : grant?.tokenEndpointUrl;
    const expectedAudience = way === 'acs' ? this.options.serviceProvider.audience : grant?.audience;

    // Times first: an expired assertion is refused as expired, whatever else is wrong with it.
    if (a.issueInstantMs > now + skew) throw cond('IssueInstant in the future');
    if (a.issueInstantMs + this.options.maxAssertionAgeMs <= now - skew) throw cond('assertion too old');
    const c = a.conditions;
    if (c.notBeforeMs !== undefined && c.notBeforeMs > now + skew) throw cond('Conditions not yet valid');
    if (c.notOnOrAfterMs !== undefined && c.notOnOrAfterMs <= now - skew) throw cond('Conditions expired');
    // SAML profiles §4.1.4.2 and RFC 7522 §3: the bearer data must bound its own use in time.
    if (a.bearer.notOnOrAfterMs === undefined) throw cond('SubjectConfirmationData without NotOnOrAfter');
    if (a.bearer.notOnOrAfterMs <= now - skew) throw cond('SubjectConfirmationData expired');
    if (a.bearer.notBeforeMs !== undefined && a.bearer.notBeforeMs > now + skew) {
      throw cond('SubjectConfirmationData not yet valid');
    }
    if (a.sessionNotOnOrAfterMs !== undefined && a.sessionNotOnOrAfterMs <= now)
      throw cond('IdP session over');
    if (
      c.audienceRestrictions.length === 0 ||
      c.audienceRestrictions.some((list) => !list.includes(expectedAudience ?? ''))
    ) {
      throw new ShieldError('ERR_SAML_AUDIENCE_INVALID');
    }
    // Gap in node-saml: Recipient is the URL the assertion may be presented at, and nowhere else.
    if (a.bearer.recipient === undefined || a.bearer.recipient !== expectedRecipient) {
      throw new ShieldError('ERR_SAML_RECIPIENT_INVALID');
    }
  }

  /** The assertion stops being acceptable at the earliest of its limits (and after the max age). */
  private expiryOf(a: VerifiedAssertion): Date {
    const limits = [a.issueInstantMs + this.options.maxAssertionAgeMs, a.bearer.notOnOrAfterMs];
    if (a.conditions.notOnOrAfterMs !== undefined) limits.push(a.conditions.notOnOrAfterMs);
    return new Date(Math.min(...limits.filter((x): x is number => x !== undefined)));
  }

  private async consumeOnce(
    idp: ResolvedSamlIdentityProvider,
    a: VerifiedAssertion,
    expiresAt: Date,
  ): Promise<void> {
    // Kept for the clock skew past expiry too: within the skew the assertion is still accepted.
    const until = new Date(expiresAt.getTime() + this.options.clockSkewMs);
    let first: boolean;
    try {
      first = await this.options.replayCache.consumeOnce(JSON.stringify([idp.entityId, a.id]), until);
    } catch (err) {
      // A cache that cannot answer refuses the login (503); it never lets the assertion through.
      if (isShieldError(err)) throw err;
      throw new ShieldError('ERR_NOT_READY', { detail: 'SAML replay cache failed', cause: err });
    }
    if (!first) throw new ShieldError('ERR_SAML_REPLAY');
  }

  private principal(idp: ResolvedSamlIdentityProvider, a: VerifiedAssertion, expiresAt: Date): SamlPrincipal {
    const { scopes, roles } = mapSamlAttributes(idp.claims, a.attributes);
    const attributes: Record<string, readonly string[]> = Object.create(null) as Record<
      string,
      readonly string[]
    >;
    for (const [name, values] of a.attributes) attributes[name] = Object.freeze([...values]);
    return Object.freeze({
      method: 'saml' as const,
      subject: a.nameId,
      issuer: idp.entityId,
      idp: idp.name,
      scopes: Object.freeze(scopes),
      roles: Object.freeze(roles),
      nameIdFormat: a.nameIdFormat,
      sessionIndex: a.sessionIndex,
      authnInstant: a.authnInstantMs === undefined ? undefined : new Date(a.authnInstantMs),
      sessionNotOnOrAfter:
        a.sessionNotOnOrAfterMs === undefined ? undefined : new Date(a.sessionNotOnOrAfterMs),
      assertionId: a.id,
      expiresAt,
      attributes: Object.freeze(attributes),
    });
  }
}

function cond(detail: string): ShieldError {
  return new ShieldError('ERR_SAML_CONDITIONS_INVALID', { detail });
}

/** Re-reads the top-level status from the checked DOM: exactly one, and Success. */
function topLevelStatusIsSuccess(facts: SamlMessageFacts): boolean {
  const root = facts.document.documentElement;
  if (root === null) return false;
  const status = childrenNamed(root, SAML_PROTOCOL_NS, 'Status');
  const code = status.length === 1 ? childrenNamed(status[0] as Element, SAML_PROTOCOL_NS, 'StatusCode') : [];
  return code.length === 1 && code[0]?.getAttribute('Value') === STATUS_SUCCESS;
}

async function verifyWithNodeSaml(saml: SAML, xml: string): Promise<Profile> {
  let result: Awaited<ReturnType<SAML['validatePostResponseAsync']>>;
  try {
    result = await saml.validatePostResponseAsync({
      SAMLResponse: Buffer.from(xml, 'utf8').toString('base64'),
    });
  } catch (err) {
    throw new ShieldError(codeForNodeSamlError(err), { detail: 'node-saml refused the message', cause: err });
  }
  if (result.profile === null || result.loggedOut) {
    throw new ShieldError('ERR_SAML_STRUCTURE_INVALID', { detail: 'not a login response' });
  }
  return result.profile;
}

/**
 * node-saml refuses with plain `Error`s: their messages are matched to our codes. Anything not
 * recognised stays a refusal (`ERR_SAML_MALFORMED`), never a 500 and never an acceptance.
 */
function codeForNodeSamlError(err: unknown): ShieldErrorCode {
  if (err instanceof SamlStatusError) return 'ERR_SAML_STATUS_NOT_SUCCESS';
  const message = err instanceof Error ? err.message : '';
  if (/not yet valid|expired|too old|subject confirmation|Error parsing|conditions/i.test(message)) {
    return 'ERR_SAML_CONDITIONS_INVALID';
  }
  if (/audience/i.test(message)) return 'ERR_SAML_AUDIENCE_INVALID';
  if (/InResponseTo/i.test(message)) return 'ERR_SAML_IN_RESPONSE_TO_INVALID';
  if (/issuer/i.test(message)) return 'ERR_SAML_ISSUER_INVALID';
  if (/signature|referenced node|ID cannot refer|transforms|signed/i.test(message))
    return 'ERR_SAML_SIGNATURE_INVALID';
  if (/multiple|missing SAML assertion|Cannot obtain assertion/i.test(message))
    return 'ERR_SAML_STRUCTURE_INVALID';
  return 'ERR_SAML_MALFORMED';
}
