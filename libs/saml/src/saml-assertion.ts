import { DOMParser, onWarningStopParsing, type Element } from '@xmldom/xmldom';
import { ShieldError } from '@inference-shield/core/internal';
import { CM_BEARER, SAML_ASSERTION_NS } from './saml.constants.js';
import { childrenNamed, textOnly } from './saml-structure.js';

/** The bearer `SubjectConfirmationData` of an assertion (SAML profiles §4.1.4.2). */
export interface BearerConfirmation {
  readonly recipient: string | undefined;
  readonly notBeforeMs: number | undefined;
  readonly notOnOrAfterMs: number | undefined;
  readonly inResponseTo: string | undefined;
}

/** Values read from the *verified* assertion: the bytes xml-crypto checked the digest over. */
export interface VerifiedAssertion {
  readonly id: string;
  readonly issuer: string;
  readonly issueInstantMs: number;
  readonly nameId: string;
  readonly nameIdFormat: string | undefined;
  readonly bearer: BearerConfirmation;
  readonly conditions: {
    readonly notBeforeMs: number | undefined;
    readonly notOnOrAfterMs: number | undefined;
    /** One list per `AudienceRestriction`: each must name us (SAML core §2.5.1.4). */
    readonly audienceRestrictions: readonly (readonly string[])[];
  };
  readonly authnInstantMs: number | undefined;
  readonly sessionNotOnOrAfterMs: number | undefined;
  readonly sessionIndex: string | undefined;
  /** Attribute name → its text values (values holding elements are skipped). */
  readonly attributes: ReadonlyMap<string, readonly string[]>;
}

const MAX_ATTRIBUTE_VALUES = 1024;
const MAX_VALUE_LENGTH = 4096;

/**
 * Reads the verified assertion (node-saml's `getAssertionXml()`: canonical XML as signed). Every
 * value used for a decision comes from here, never from the raw message.
 */
export function readVerifiedAssertion(xml: string): VerifiedAssertion {
  let root: Element | null;
  try {
    root = new DOMParser({ onError: onWarningStopParsing }).parseFromString(xml, 'text/xml').documentElement;
  } catch (err) {
    throw new ShieldError('ERR_SAML_MALFORMED', { detail: 'verified assertion does not parse', cause: err });
  }
  if (root === null || root.localName !== 'Assertion' || root.namespaceURI !== SAML_ASSERTION_NS) {
    throw new ShieldError('ERR_SAML_STRUCTURE_INVALID', { detail: 'verified content is not an Assertion' });
  }
  const id = root.getAttribute('ID') ?? '';
  const issuer = textOnly(one(root, 'Issuer'));
  const issueInstantMs = time(root.getAttribute('IssueInstant'), 'IssueInstant', true);

  const subject = one(root, 'Subject');
  const nameIdEl = one(subject, 'NameID');
  const nameId = textOnly(nameIdEl);
  const nameIdFormat = nameIdEl.getAttribute('Format') ?? undefined;

  // Exactly one bearer confirmation: with several, which one "counts" is a choice an attacker can steer.
  const bearers = childrenNamed(subject, SAML_ASSERTION_NS, 'SubjectConfirmation').filter(
    (sc) => sc.getAttribute('Method') === CM_BEARER,
  );
  if (bearers.length !== 1) {
    throw new ShieldError('ERR_SAML_STRUCTURE_INVALID', {
      detail: 'not exactly one bearer SubjectConfirmation',
    });
  }
  const data = childrenNamed(bearers[0] as Element, SAML_ASSERTION_NS, 'SubjectConfirmationData');
  if (data.length !== 1) {
    throw new ShieldError('ERR_SAML_STRUCTURE_INVALID', {
      detail: 'not exactly one SubjectConfirmationData',
    });
  }
  const scd = data[0] as Element;
  const bearer: BearerConfirmation = {
    recipient: scd.getAttribute('Recipient') ?? undefined,
    notBeforeMs: time(scd.getAttribute('NotBefore'), 'SubjectConfirmationData NotBefore', false),
    notOnOrAfterMs: time(scd.getAttribute('NotOnOrAfter'), 'SubjectConfirmationData NotOnOrAfter', false),
    inResponseTo: scd.getAttribute('InResponseTo') ?? undefined,
  };

  const conditionsEls = childrenNamed(root, SAML_ASSERTION_NS, 'Conditions');
  if (conditionsEls.length !== 1) {
    throw new ShieldError('ERR_SAML_CONDITIONS_INVALID', { detail: 'not exactly one Conditions' });
  }
  const conditionsEl = conditionsEls[0] as Element;
  const audienceRestrictions = childrenNamed(conditionsEl, SAML_ASSERTION_NS, 'AudienceRestriction').map(
    (ar) => childrenNamed(ar, SAML_ASSERTION_NS, 'Audience').map((a) => textOnly(a)),
  );

  let authnInstantMs: number | undefined;
  let sessionNotOnOrAfterMs: number | undefined;
  let sessionIndex: string | undefined;
  const authn = childrenNamed(root, SAML_ASSERTION_NS, 'AuthnStatement');
  if (authn.length > 1)
    throw new ShieldError('ERR_SAML_STRUCTURE_INVALID', { detail: 'several AuthnStatements' });
  if (authn[0] !== undefined) {
    authnInstantMs = time(authn[0].getAttribute('AuthnInstant'), 'AuthnInstant', false);
    sessionNotOnOrAfterMs = time(authn[0].getAttribute('SessionNotOnOrAfter'), 'SessionNotOnOrAfter', false);
    sessionIndex = authn[0].getAttribute('SessionIndex') ?? undefined;
  }

  const attributes = new Map<string, string[]>();
  let count = 0;
  for (const statement of childrenNamed(root, SAML_ASSERTION_NS, 'AttributeStatement')) {
    for (const attr of childrenNamed(statement, SAML_ASSERTION_NS, 'Attribute')) {
      const name = attr.getAttribute('Name');
      if (name === null || name.length === 0) continue;
      const values = attributes.get(name) ?? [];
      for (const v of childrenNamed(attr, SAML_ASSERTION_NS, 'AttributeValue')) {
        if (++count > MAX_ATTRIBUTE_VALUES) {
          throw new ShieldError('ERR_SAML_STRUCTURE_INVALID', { detail: 'too many attribute values' });
        }
        let text: string;
        try {
          text = textOnly(v);
        } catch {
          continue; // structured values (e.g. NameID inside AttributeValue) map to nothing
        }
        if (text.length <= MAX_VALUE_LENGTH) values.push(text);
      }
      attributes.set(name, values);
    }
  }

  return {
    id,
    issuer,
    issueInstantMs: issueInstantMs as number,
    nameId,
    nameIdFormat,
    bearer,
    conditions: {
      notBeforeMs: time(conditionsEl.getAttribute('NotBefore'), 'Conditions NotBefore', false),
      notOnOrAfterMs: time(conditionsEl.getAttribute('NotOnOrAfter'), 'Conditions NotOnOrAfter', false),
      audienceRestrictions,
    },
    authnInstantMs,
    sessionNotOnOrAfterMs,
    sessionIndex,
    attributes,
  };
}

function one(el: Element, localName: string): Element {
  const found = childrenNamed(el, SAML_ASSERTION_NS, localName);
  if (found.length !== 1) {
    throw new ShieldError('ERR_SAML_STRUCTURE_INVALID', { detail: `not exactly one ${localName}` });
  }
  return found[0] as Element;
}

/** SAML core §1.3.3: xs:dateTime in UTC, with no time zone other than `Z`. */
const UTC_DATE_TIME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,9})?Z$/;

/** Parses a SAML time; a malformed one is refused as a conditions failure, never ignored. */
export function time(value: string | null, what: string, required: true): number;
export function time(value: string | null, what: string, required: boolean): number | undefined;
export function time(value: string | null, what: string, required: boolean): number | undefined {
  if (value === null) {
    if (required) throw new ShieldError('ERR_SAML_CONDITIONS_INVALID', { detail: `missing ${what}` });
    return undefined;
  }
  const m = UTC_DATE_TIME.exec(value);
  const ms = m === null ? NaN : Date.parse(`${m[1]}${(m[2] ?? '').slice(0, 4)}Z`);
  if (!Number.isFinite(ms))
    throw new ShieldError('ERR_SAML_CONDITIONS_INVALID', { detail: `malformed ${what}` });
  return ms;
}
