/**
 * The dev IdP's clients file (`apps/dev-idp/clients.json`): the resource servers it issues tokens
 * for and the clients allowed to ask. Parsed strictly at start-up: an unknown key, a missing
 * secret or a scope no resource knows is a `TypeError` naming the field, so a typo never turns
 * into a client that silently gets more (or other) access than written.
 */
import { createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  assertBoolean,
  assertInteger,
  assertKnownKeys,
  assertOneOf,
  assertString,
  assertStringArray,
  deepFreeze,
  describeValue,
  parseHttpsUrl,
  parseSpiffeId,
} from '@inference-shield/core/internal';

/** Token endpoint authentication methods the dev IdP supports (RFC 6749 2.3.1, RFC 8705 2). */
export const DEV_IDP_AUTH_METHODS = [
  'client_secret_basic',
  'client_secret_post',
  'tls_client_auth',
  'self_signed_tls_client_auth',
  'private_key_jwt',
] as const;

/** One of {@link DEV_IDP_AUTH_METHODS}. */
export type DevIdpAuthMethod = (typeof DEV_IDP_AUTH_METHODS)[number];

/** A resource server (RFC 8707 resource indicator): its identifier is the `aud` of its tokens. */
export interface DevIdpResource {
  readonly identifier: string;
  readonly scopes: readonly string[];
  readonly accessTokenTtlSeconds: number;
  /**
   * `jwt` (default): RFC 9068 JWT access tokens. `opaque`: tokens only the IdP can read, which a
   * resource server checks by RFC 7662 introspection.
   */
  readonly accessTokenFormat: 'jwt' | 'opaque';
}

/** A client allowed to use the `client_credentials` grant. */
export interface DevIdpClient {
  readonly clientId: string;
  readonly auth: DevIdpAuthMethod;
  /** Only for `client_secret_*`. A dev secret, committed on purpose: never reuse it anywhere else. */
  readonly clientSecret?: string;
  readonly scopes: readonly string[];
  /**
   * The resources (audiences) it may ask tokens for, by identifier; every resource when the file
   * does not say. A token's scopes are always the requested ones that both the client and the
   * resource list.
   */
  readonly resources?: readonly string[];
  /** RFC 8705 3: tokens carry `cnf.x5t#S256` of the certificate presented at the token endpoint. */
  readonly certificateBoundAccessTokens: boolean;
  /** Only for `tls_client_auth`: the URI SAN (e.g. a SPIFFE ID) the CA-issued certificate must carry. */
  readonly tlsClientAuthSanUri?: string;
  /** Only for `self_signed_tls_client_auth`: the registered certificate (PEM). */
  readonly selfSignedCertificatePem?: string;
  /** Only for `private_key_jwt`: the client's registered public key (PEM), checking its assertions. */
  readonly publicKeyPem?: string;
  /** A resource server: may call the RFC 7662 introspection endpoint. Default false. */
  readonly introspect: boolean;
}

/** The parsed, frozen clients file. */
export interface DevIdpClientsConfig {
  readonly defaultResource: string;
  readonly resources: readonly DevIdpResource[];
  readonly clients: readonly DevIdpClient[];
}

const TOP_KEYS = ['$comment', 'defaultResource', 'resources', 'clients'] as const;
const RESOURCE_KEYS = ['identifier', 'scopes', 'accessTokenTtlSeconds', 'accessTokenFormat'] as const;
const CLIENT_KEYS = [
  '$comment',
  'clientId',
  'auth',
  'clientSecret',
  'scopes',
  'resources',
  'certificateBoundAccessTokens',
  'tlsClientAuthSanUri',
  'selfSignedCertificateFile',
  'publicKeyFile',
  'introspect',
] as const;

// RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
const CLIENT_ID = /^[A-Za-z0-9._~-]{1,64}$/;
const DEFAULT_TTL_SECONDS = 300;

function parseScopes(field: string, value: unknown): string[] {
  assertStringArray(field, value, { nonEmpty: true });
  for (const scope of value) {
    if (!SCOPE_TOKEN.test(scope))
      throw new TypeError(`"${field}" has an invalid scope ${describeValue(scope)}`);
  }
  return [...new Set(value)];
}

function parseResource(field: string, value: unknown): DevIdpResource {
  assertKnownKeys(field, value, RESOURCE_KEYS);
  // Validated as an https: URL, kept as written: resource servers compare `aud` as a string.
  parseHttpsUrl(`${field}.identifier`, value.identifier);
  const identifier = value.identifier as string;
  const ttl = value.accessTokenTtlSeconds ?? DEFAULT_TTL_SECONDS;
  assertInteger(`${field}.accessTokenTtlSeconds`, ttl, 10, 24 * 3600);
  const format = value.accessTokenFormat ?? 'jwt';
  assertOneOf(`${field}.accessTokenFormat`, format, ['jwt', 'opaque'] as const);
  return {
    identifier,
    scopes: parseScopes(`${field}.scopes`, value.scopes),
    accessTokenTtlSeconds: ttl,
    accessTokenFormat: format,
  };
}

function parseClient(
  field: string,
  value: unknown,
  knownScopes: ReadonlySet<string>,
  resourceScopes: ReadonlyMap<string, ReadonlySet<string>>,
  baseDir: string,
): DevIdpClient {
  assertKnownKeys(field, value, CLIENT_KEYS);
  const { clientId, auth } = value;
  assertString(`${field}.clientId`, clientId);
  if (!CLIENT_ID.test(clientId)) {
    throw new TypeError(
      `"${field}.clientId" must be 1-64 characters of [A-Za-z0-9._~-], got ${describeValue(clientId)}`,
    );
  }
  assertOneOf(`${field}.auth`, auth, DEV_IDP_AUTH_METHODS);
  const scopes = parseScopes(`${field}.scopes`, value.scopes);
  for (const scope of scopes) {
    if (!knownScopes.has(scope))
      throw new TypeError(`"${field}.scopes" has ${JSON.stringify(scope)}, which no resource defines`);
  }
  const bound = value.certificateBoundAccessTokens ?? false;
  assertBoolean(`${field}.certificateBoundAccessTokens`, bound);
  const introspect = value.introspect ?? false;
  assertBoolean(`${field}.introspect`, introspect);

  const client: {
    -readonly [K in keyof DevIdpClient]: DevIdpClient[K];
  } = { clientId, auth, scopes, certificateBoundAccessTokens: bound, introspect };
  if (value.resources !== undefined) {
    assertStringArray(`${field}.resources`, value.resources, { nonEmpty: true });
    for (const resource of value.resources) {
      if (!resourceScopes.has(resource)) {
        throw new TypeError(
          `"${field}.resources" has ${JSON.stringify(resource)}, which is not a resource's identifier`,
        );
      }
    }
    // A client that may reach no resource holding one of its scopes is a typo, not a policy.
    const reachable = new Set(value.resources);
    if (!scopes.every((scope) => [...reachable].some((r) => resourceScopes.get(r)?.has(scope)))) {
      throw new TypeError(`"${field}.scopes" has a scope none of "${field}.resources" defines`);
    }
    client.resources = [...reachable];
  }

  const onlyFor = (key: string, method: DevIdpAuthMethod | 'client_secret_*', present: boolean): void => {
    if (value[key] !== undefined && !present) {
      throw new TypeError(`"${field}.${key}" is only allowed with "auth": ${JSON.stringify(method)}`);
    }
  };
  const secretAuth = auth === 'client_secret_basic' || auth === 'client_secret_post';
  onlyFor('clientSecret', 'client_secret_*', secretAuth);
  onlyFor('tlsClientAuthSanUri', 'tls_client_auth', auth === 'tls_client_auth');
  onlyFor('selfSignedCertificateFile', 'self_signed_tls_client_auth', auth === 'self_signed_tls_client_auth');
  onlyFor('publicKeyFile', 'private_key_jwt', auth === 'private_key_jwt');

  if (secretAuth) {
    assertString(`${field}.clientSecret`, value.clientSecret);
    // oidc-provider also refuses short secrets for HS algorithms; 32 characters keeps them all usable.
    if (value.clientSecret.length < 32)
      throw new TypeError(`"${field}.clientSecret" must be at least 32 characters`);
    client.clientSecret = value.clientSecret;
  } else if (auth === 'tls_client_auth') {
    // RFC 8705 2.1.2: the client names exactly one subject value its CA-issued certificate must carry.
    assertString(`${field}.tlsClientAuthSanUri`, value.tlsClientAuthSanUri);
    const uri = value.tlsClientAuthSanUri;
    if (URL.parse(uri) === null || (uri.startsWith('spiffe:') && parseSpiffeId(uri) === undefined)) {
      throw new TypeError(
        `"${field}.tlsClientAuthSanUri" must be an absolute URI (a valid SPIFFE ID for spiffe:), got ${describeValue(uri)}`,
      );
    }
    client.tlsClientAuthSanUri = value.tlsClientAuthSanUri;
  } else if (auth === 'private_key_jwt') {
    // RFC 7523 2.2: the client signs its assertion; the IdP checks it with the registered public key.
    assertString(`${field}.publicKeyFile`, value.publicKeyFile);
    const file = resolve(baseDir, value.publicKeyFile);
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
      createPublicKey(pem);
    } catch (err) {
      throw new TypeError(`"${field}.publicKeyFile" (${file}) is not a readable PEM public key`, {
        cause: err,
      });
    }
    client.publicKeyPem = pem;
  } else {
    assertString(`${field}.selfSignedCertificateFile`, value.selfSignedCertificateFile);
    const file = resolve(baseDir, value.selfSignedCertificateFile);
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
      new X509Certificate(pem);
    } catch (err) {
      throw new TypeError(
        `"${field}.selfSignedCertificateFile" (${file}) is not a readable PEM certificate`,
        {
          cause: err,
        },
      );
    }
    client.selfSignedCertificatePem = pem;
  }
  return client;
}

/**
 * Parse a clients configuration object (the JSON of a clients file). `baseDir` resolves relative
 * certificate paths.
 */
export function parseDevIdpClientsConfig(
  raw: unknown,
  baseDir: string,
  source = 'clients',
): DevIdpClientsConfig {
  assertKnownKeys(source, raw, TOP_KEYS);
  if (!Array.isArray(raw.resources) || raw.resources.length === 0) {
    throw new TypeError(
      `"${source}.resources" must be a non-empty array, got ${describeValue(raw.resources)}`,
    );
  }
  const resources = raw.resources.map((r, i) => parseResource(`${source}.resources[${i}]`, r));
  const ids = new Set<string>();
  for (const r of resources) {
    if (ids.has(r.identifier)) throw new TypeError(`"${source}.resources" lists ${r.identifier} twice`);
    ids.add(r.identifier);
  }
  assertString(`${source}.defaultResource`, raw.defaultResource);
  const defaultResource = resources.find((r) => r.identifier === raw.defaultResource)?.identifier;
  if (!defaultResource) {
    throw new TypeError(
      `"${source}.defaultResource" must be one of the resources' identifiers, got ${describeValue(raw.defaultResource)}`,
    );
  }

  if (!Array.isArray(raw.clients) || raw.clients.length === 0) {
    throw new TypeError(`"${source}.clients" must be a non-empty array, got ${describeValue(raw.clients)}`);
  }
  const knownScopes = new Set(resources.flatMap((r) => r.scopes));
  const resourceScopes = new Map(resources.map((r) => [r.identifier, new Set(r.scopes)]));
  const clients = raw.clients.map((c, i) =>
    parseClient(`${source}.clients[${i}]`, c, knownScopes, resourceScopes, baseDir),
  );
  const clientIds = new Set<string>();
  for (const c of clients) {
    if (clientIds.has(c.clientId)) throw new TypeError(`"${source}.clients" lists ${c.clientId} twice`);
    clientIds.add(c.clientId);
  }
  return deepFreeze({ defaultResource, resources, clients });
}

/** Read and parse a clients file; errors name the file. */
export function loadDevIdpClientsFile(file: string): DevIdpClientsConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TypeError(`dev IdP clients file ${file} cannot be read: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new TypeError(`dev IdP clients file ${file} is not valid JSON`, { cause: err });
  }
  return parseDevIdpClientsConfig(raw, dirname(file), file);
}
