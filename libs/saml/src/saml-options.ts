import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import {
  assertBoolean,
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertString,
  assertStringArray,
  deepFreeze,
  describeValue,
  parseHttpsUrl,
  readBoundedFile,
} from '@inference-shield/core/internal';
import { parseCertificatePem } from '@inference-shield/core/internal';
import type { SamlAuditSink } from './saml-audit.js';
import type {
  ResolvedSamlIdentityProvider,
  ResolvedSamlOptions,
  SamlClaimRule,
} from './saml-options.interface.js';
import { MemorySamlReplayCache, type SamlReplayCache } from './saml-replay-cache.js';
import { IDP_NAME } from './saml.constants.js';
import { MemorySamlRequestStore, type SamlRequestStore } from './saml-request-store.js';

const TOP_KEYS = [
  'serviceProvider',
  'identityProviders',
  'tokens',
  'grant',
  'clockSkewSeconds',
  'maxAssertionAgeSeconds',
  'maxMessageBytes',
  'loginRequestTtlSeconds',
  'replayCache',
  'requestStore',
  'memoryStoreMaxEntries',
  'audit',
] as const;
const SP_KEYS = ['entityId', 'acsUrl', 'audience'] as const;
const IDP_KEYS = [
  'name',
  'entityId',
  'ssoUrl',
  'signingCertificates',
  'signingCertificateFiles',
  'requireSignedResponse',
  'allowIdpInitiated',
  'allowBearerGrant',
  'nameIdFormat',
  'claims',
] as const;
const TOKEN_KEYS = ['issuer', 'audience', 'ttlSeconds', 'signingKey'] as const;
const GRANT_KEYS = ['tokenEndpointUrl', 'audience'] as const;
const CLAIMS_KEYS = ['defaultScopes', 'defaultRoles', 'rules'] as const;
const RULE_KEYS = ['attribute', 'equals', 'scopes', 'roles'] as const;

/** SAML core §8.3.6: an entity identifier is a URI of at most 1024 characters. */
const MAX_ENTITY_ID = 1024;
const URI_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;
/** RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/;
const UNSPECIFIED_NAMEID = 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified';
/** RSA below 2048 bits is refused (NIST SP 800-131A); xml-crypto verifies RSA signatures only. */
const MIN_RSA_BITS = 2048;
const MAX_CERTS_PER_IDP = 8;
const MAX_IDPS = 32;
const MAX_RULES = 256;

/**
 * Parses raw SAML module options once, at start-up: every field checked, every default filled
 * in, unknown keys refused, pinned certificates and the token key read and checked, the result
 * frozen. A bad field throws a `TypeError` that names it. The only I/O is reading the configured
 * PEM files.
 *
 * @example
 * const options = resolveSamlOptions({
 *   serviceProvider: { entityId: 'https://api.example/saml', acsUrl: 'https://api.example/saml/acs' },
 *   identityProviders: [{ name: 'okta', entityId: 'http://www.okta.com/exk1', ssoUrl: 'https://corp.okta.com/app/sso/saml',
 *     signingCertificateFiles: ['/etc/shield/okta.pem'] }],
 *   tokens: { issuer: 'https://api.example', audience: 'https://api.example', signingKey: { privateKeyFile: '/etc/shield/saml-token-key.pem' } },
 * });
 */
export function resolveSamlOptions(raw: unknown, now: Date = new Date()): ResolvedSamlOptions {
  assertKnownKeys('saml', raw, TOP_KEYS);

  const spRaw = raw['serviceProvider'];
  assertKnownKeys('serviceProvider', spRaw, SP_KEYS);
  const spEntityId = entityId('serviceProvider.entityId', spRaw['entityId']);
  const acsUrl = exactHttpsUrl('serviceProvider.acsUrl', spRaw['acsUrl']);
  const spAudience =
    spRaw['audience'] === undefined ? spEntityId : entityId('serviceProvider.audience', spRaw['audience']);

  const idpsRaw = raw['identityProviders'];
  if (!Array.isArray(idpsRaw) || idpsRaw.length === 0 || idpsRaw.length > MAX_IDPS) {
    throw new TypeError(
      `"identityProviders" must be an array of 1 to ${MAX_IDPS} identity providers, got ${describeValue(idpsRaw)}`,
    );
  }
  const identityProviders = idpsRaw.map((value, i) => resolveIdp(`identityProviders[${i}]`, value, now));
  const names = new Set<string>();
  const entityIds = new Set<string>();
  for (const [i, idp] of identityProviders.entries()) {
    if (names.has(idp.name)) throw new TypeError(`"identityProviders[${i}].name" repeats "${idp.name}"`);
    // The unverified Issuer picks the IdP whose certificates verify the message: it must be unambiguous.
    if (entityIds.has(idp.entityId)) {
      throw new TypeError(`"identityProviders[${i}].entityId" repeats ${JSON.stringify(idp.entityId)}`);
    }
    names.add(idp.name);
    entityIds.add(idp.entityId);
  }

  const tokens = resolveTokens(raw['tokens']);

  let grant: ResolvedSamlOptions['grant'];
  if (raw['grant'] !== undefined) {
    const g = raw['grant'];
    assertKnownKeys('grant', g, GRANT_KEYS);
    grant = {
      tokenEndpointUrl: exactHttpsUrl('grant.tokenEndpointUrl', g['tokenEndpointUrl']),
      audience: g['audience'] === undefined ? spEntityId : entityId('grant.audience', g['audience']),
    };
  }
  if (grant === undefined && identityProviders.some((idp) => idp.allowBearerGrant)) {
    throw new TypeError(`"grant" is required when an identity provider sets "allowBearerGrant"`);
  }

  const clockSkewSeconds = raw['clockSkewSeconds'] ?? 60;
  assertInteger('clockSkewSeconds', clockSkewSeconds, 0, 300);
  const maxAssertionAgeSeconds = raw['maxAssertionAgeSeconds'] ?? 600;
  assertInteger('maxAssertionAgeSeconds', maxAssertionAgeSeconds, 30, 86_400);
  const maxMessageBytes = raw['maxMessageBytes'] ?? 262_144;
  assertInteger('maxMessageBytes', maxMessageBytes, 4096, 1_048_576);
  const loginRequestTtlSeconds = raw['loginRequestTtlSeconds'] ?? 600;
  assertInteger('loginRequestTtlSeconds', loginRequestTtlSeconds, 60, 3600);
  const memoryStoreMaxEntries = raw['memoryStoreMaxEntries'] ?? 100_000;
  assertInteger('memoryStoreMaxEntries', memoryStoreMaxEntries, 1, 10_000_000);

  const replayCache =
    raw['replayCache'] === undefined
      ? new MemorySamlReplayCache(memoryStoreMaxEntries)
      : implementation<SamlReplayCache>('replayCache', raw['replayCache'], ['consumeOnce']);
  const requestStore =
    raw['requestStore'] === undefined
      ? new MemorySamlRequestStore(memoryStoreMaxEntries)
      : implementation<SamlRequestStore>('requestStore', raw['requestStore'], ['save', 'take']);

  let sink: SamlAuditSink | undefined;
  if (raw['audit'] !== undefined) {
    assertKnownKeys('audit', raw['audit'], ['sink']);
    const s = raw['audit']['sink'];
    if (s !== undefined) sink = implementation<SamlAuditSink>('audit.sink', s, ['record']);
  }

  // deepFreeze leaves class instances (stores, key objects, certificates) as they are.
  return deepFreeze({
    serviceProvider: { entityId: spEntityId, acsUrl, audience: spAudience },
    identityProviders,
    tokens,
    grant,
    clockSkewMs: clockSkewSeconds * 1000,
    maxAssertionAgeMs: maxAssertionAgeSeconds * 1000,
    maxMessageBytes,
    loginRequestTtlMs: loginRequestTtlSeconds * 1000,
    replayCache,
    requestStore,
    audit: { sink },
  });
}

function resolveIdp(field: string, value: unknown, now: Date): ResolvedSamlIdentityProvider {
  assertKnownKeys(field, value, IDP_KEYS);
  const name = value['name'];
  assertString(`${field}.name`, name);
  if (!IDP_NAME.test(name)) {
    throw new TypeError(
      `"${field}.name" must be lowercase letters, digits and "-" (at most 32), got ${describeValue(name)}`,
    );
  }
  const idpEntityId = entityId(`${field}.entityId`, value['entityId']);
  const ssoUrl = exactHttpsUrl(`${field}.ssoUrl`, value['ssoUrl']);

  const certificates: X509Certificate[] = [];
  const inline = value['signingCertificates'];
  if (inline !== undefined) {
    assertStringArray(`${field}.signingCertificates`, inline);
    inline.forEach((pem, i) =>
      certificates.push(...parseCertificates(`${field}.signingCertificates[${i}]`, pem, now)),
    );
  }
  const files = value['signingCertificateFiles'];
  if (files !== undefined) {
    assertStringArray(`${field}.signingCertificateFiles`, files);
    files.forEach((path, i) => {
      const f = `${field}.signingCertificateFiles[${i}]`;
      certificates.push(...parseCertificates(f, readPem(f, path), now));
    });
  }
  if (certificates.length === 0) {
    throw new TypeError(
      `"${field}" must pin at least one signing certificate ("signingCertificates" or "signingCertificateFiles")`,
    );
  }
  if (certificates.length > MAX_CERTS_PER_IDP) {
    throw new TypeError(`"${field}" pins ${certificates.length} certificates; at most ${MAX_CERTS_PER_IDP}`);
  }

  const flag = (key: string): boolean => {
    const v = value[key] ?? false;
    assertBoolean(`${field}.${key}`, v);
    return v;
  };
  const nameIdFormat = value['nameIdFormat'] ?? UNSPECIFIED_NAMEID;
  assertString(`${field}.nameIdFormat`, nameIdFormat);
  if (!URI_SCHEME.test(nameIdFormat) || nameIdFormat.length > 256) {
    throw new TypeError(`"${field}.nameIdFormat" must be a URI, got ${describeValue(nameIdFormat)}`);
  }

  return {
    name,
    entityId: idpEntityId,
    ssoUrl,
    signingCertificatePems: certificates.map((c) => c.toString()),
    signingCertificates: certificates,
    requireSignedResponse: flag('requireSignedResponse'),
    allowIdpInitiated: flag('allowIdpInitiated'),
    allowBearerGrant: flag('allowBearerGrant'),
    nameIdFormat,
    claims: resolveClaims(`${field}.claims`, value['claims']),
  };
}

function resolveClaims(field: string, value: unknown): ResolvedSamlIdentityProvider['claims'] {
  if (value === undefined) return { defaultScopes: [], defaultRoles: [], rules: [] };
  assertKnownKeys(field, value, CLAIMS_KEYS);
  const defaultScopes = scopes(`${field}.defaultScopes`, value['defaultScopes'] ?? []);
  const defaultRoles = roles(`${field}.defaultRoles`, value['defaultRoles'] ?? []);
  const rulesRaw = value['rules'] ?? [];
  if (!Array.isArray(rulesRaw) || rulesRaw.length > MAX_RULES) {
    throw new TypeError(`"${field}.rules" must be an array of at most ${MAX_RULES} rules`);
  }
  const rules = rulesRaw.map((rule: unknown, i): Readonly<Required<SamlClaimRule>> => {
    const f = `${field}.rules[${i}]`;
    assertKnownKeys(f, rule, RULE_KEYS);
    assertString(`${f}.attribute`, rule['attribute']);
    assertString(`${f}.equals`, rule['equals']);
    const granted = {
      attribute: rule['attribute'],
      equals: rule['equals'],
      scopes: scopes(`${f}.scopes`, rule['scopes'] ?? []),
      roles: roles(`${f}.roles`, rule['roles'] ?? []),
    };
    if (granted.scopes.length === 0 && granted.roles.length === 0) {
      throw new TypeError(`"${f}" grants nothing: give it "scopes" or "roles"`);
    }
    return granted;
  });
  return { defaultScopes, defaultRoles, rules };
}

function scopes(field: string, value: unknown): string[] {
  assertStringArray(field, value);
  for (const s of value) {
    if (!SCOPE_TOKEN.test(s)) throw new TypeError(`"${field}" holds an invalid scope ${describeValue(s)}`);
  }
  return [...value];
}

function roles(field: string, value: unknown): string[] {
  assertStringArray(field, value);
  for (const r of value) {
    if (r.length > 256) throw new TypeError(`"${field}" holds a role longer than 256 characters`);
  }
  return [...value];
}

function resolveTokens(value: unknown): ResolvedSamlOptions['tokens'] {
  assertKnownKeys('tokens', value, TOKEN_KEYS);
  const issuer = exactHttpsUrl('tokens.issuer', value['issuer']);
  const audRaw = value['audience'];
  const audience = typeof audRaw === 'string' ? [audRaw] : audRaw;
  assertStringArray('tokens.audience', audience, { nonEmpty: true });
  const ttlSeconds = value['ttlSeconds'] ?? 300;
  assertInteger('tokens.ttlSeconds', ttlSeconds, 30, 3600);
  const keyRaw = value['signingKey'];
  let signingKey: KeyObject | 'ephemeral';
  if (keyRaw === 'ephemeral') {
    signingKey = 'ephemeral';
  } else {
    assertKnownKeys('tokens.signingKey', keyRaw, ['privateKeyFile']);
    const path = keyRaw['privateKeyFile'];
    assertString('tokens.signingKey.privateKeyFile', path);
    signingKey = loadP256Key(
      'tokens.signingKey.privateKeyFile',
      readPem('tokens.signingKey.privateKeyFile', path),
    );
  }
  return { issuer, audience: [...audience], ttlSeconds, signingKey };
}

function loadP256Key(field: string, pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    // The parser's message is not repeated: it may quote key material.
    throw new TypeError(`"${field}" does not hold a readable PEM private key`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TypeError(
      `"${field}" must hold a P-256 (ES256) private key, got ${key.asymmetricKeyType ?? 'unknown'}`,
    );
  }
  return key;
}

// A certificate chain or a private key: far below this. The cap keeps a mistyped path (a log file,
// /dev/zero, a FIFO) from filling memory or hanging start-up.
const MAX_PEM_FILE_BYTES = 1024 * 1024;

function readPem(field: string, path: string): string {
  try {
    return readBoundedFile(path, 'PEM', MAX_PEM_FILE_BYTES).toString('utf8');
  } catch (err) {
    // The file's contents are never quoted: the messages name the path and the reason only.
    const code = (err as { cause?: { code?: unknown } }).cause?.code;
    const reason =
      typeof code === 'string'
        ? `cannot be read (${code}): ${path}`
        : `cannot be read: ${err instanceof Error ? err.message : 'error'}`;
    throw new TypeError(`"${field}" ${reason}`, { cause: err });
  }
}

/**
 * The certificates of one `signingCertificates` entry or file: core's strict PEM parsing (the one
 * PEM parser: only well-formed `-----BEGIN CERTIFICATE-----` blocks, each one parsed, none skipped,
 * at least one, 1 MiB at most), then SAML's own rules for each (RSA of 2048 bits or more, valid now).
 * Several certificates in one entry are allowed (a rollover). Core's message names the field.
 */
function parseCertificates(field: string, pem: string, now: Date): X509Certificate[] {
  let certificates: X509Certificate[];
  try {
    certificates = parseCertificatePem(pem, field);
  } catch (err) {
    // A configuration mistake: a TypeError like every other option, with core's reason.
    throw new TypeError(err instanceof Error ? err.message : `"${field}" holds no valid PEM certificate`, {
      cause: err,
    });
  }
  return certificates.map((cert, i) => {
    const where = certificates.length > 1 ? `${field} (certificate ${i + 1})` : field;
    const key = cert.publicKey;
    if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) {
      throw new TypeError(
        `"${where}" must hold an RSA key of at least ${MIN_RSA_BITS} bits (SAML signatures are verified as RSA-SHA256/512)`,
      );
    }
    if (new Date(cert.validTo).getTime() <= now.getTime()) {
      throw new TypeError(`"${where}" expired on ${new Date(cert.validTo).toISOString()}`);
    }
    if (new Date(cert.validFrom).getTime() > now.getTime()) {
      throw new TypeError(`"${where}" is not valid before ${new Date(cert.validFrom).toISOString()}`);
    }
    return cert;
  });
}

function entityId(field: string, value: unknown): string {
  assertString(field, value);
  if (value.length > MAX_ENTITY_ID || !URI_SCHEME.test(value)) {
    throw new TypeError(
      `"${field}" must be an absolute URI of at most ${MAX_ENTITY_ID} characters, got ${describeValue(value)}`,
    );
  }
  return value;
}

/**
 * An `https:` URL kept exactly as written: `Destination` and `Recipient` are compared with it
 * byte for byte (SAML core §3.2.2, profiles §4.1.4.2), as is `iss` by token verifiers.
 */
function exactHttpsUrl(field: string, value: unknown): string {
  parseHttpsUrl(field, value);
  return value as string;
}

function implementation<T>(field: string, value: unknown, methods: readonly string[]): T {
  assertObject(field, value);
  for (const m of methods) {
    if (typeof value[m] !== 'function') throw new TypeError(`"${field}" must implement ${m}()`);
  }
  return value as T;
}
