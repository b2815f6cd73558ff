import {
  assertCaSource,
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertOneOf,
  assertString,
  copyCaSource,
  describeValue,
  isShieldError,
  parseHttpsUrl,
  readBoundedFile,
} from '@inference-shield/core/internal';
import type {
  ResolvedClientAuth,
  ResolvedSubjectTokenSource,
  ResolvedUpstreamCredential,
} from './credential-options.interface.js';

/** RFC 8693 §3 token type of a JWT. */
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
/** RFC 8693 §3 token type of an OAuth access token (the caller's, on behalf of). */
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
/** RFC 8693 §2.1 grant type. */
export const GRANT_TYPE_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 7523 §2.1 grant type. */
export const GRANT_TYPE_JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

const KINDS = ['clientCredentials', 'tokenExchange', 'certificateExchange'] as const;
const ENDPOINT_KEYS = [
  'tokenEndpoint',
  'issuer',
  'ca',
  'scope',
  'audience',
  'resource',
  'parameters',
  'encoding',
  'timeoutMs',
] as const;
/** Parameters the credential sets itself: `parameters` cannot replace them. */
const RESERVED_PARAMETERS: ReadonlySet<string> = new Set([
  'grant_type',
  'client_id',
  'client_secret',
  'client_assertion',
  'client_assertion_type',
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
  'assertion',
  'scope',
  'audience',
  'resource',
]);
const MAX_SECRET_FILE_BYTES = 8 * 1024;
// RFC 6749 A.4 scope; RFC 8693 token type URIs and client ids: visible ASCII, bounded.
const SCOPE = /^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/;
const VISIBLE = /^[\x21-\x7e]{1,512}$/;

/**
 * Parse `upstreams.<name>.credential` once, at start-up: exactly one kind, every field checked (a
 * `TypeError` naming it), unknown keys refused, a client secret read from its env var or file.
 * Nothing is fetched and no key is loaded here; the client does that when it is created.
 */
export function resolveUpstreamCredential(
  field: string,
  raw: unknown,
  hasClientCertificate: boolean,
  upstreamOrigin: string,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedUpstreamCredential {
  assertKnownKeys(field, raw, KINDS);
  const kinds = KINDS.filter((k) => raw[k] !== undefined);
  if (kinds.length !== 1) {
    throw new TypeError(
      `"${field}" must hold exactly one of ${KINDS.map((k) => `"${k}"`).join(', ')}, got ${kinds.length}`,
    );
  }
  const kind = kinds[0] as (typeof KINDS)[number];
  const f = `${field}.${kind}`;
  const o = raw[kind];
  const extra =
    kind === 'clientCredentials'
      ? ['clientAuth']
      : kind === 'tokenExchange'
        ? ['grant', 'subjectToken', 'subjectTokenType', 'actorToken', 'actorTokenType', 'clientAuth']
        : ['clientId'];
  assertKnownKeys(f, o, [...ENDPOINT_KEYS, ...extra]);

  const endpoint = parseHttpsUrl(`${f}.tokenEndpoint`, o.tokenEndpoint);
  // A query could carry a secret into logs and proxies; the endpoint is a plain URL.
  if (endpoint.search) throw new TypeError(`"${f}.tokenEndpoint" must not have a query`);
  let issuer = endpoint.origin;
  if (o.issuer !== undefined) {
    parseHttpsUrl(`${f}.issuer`, o.issuer);
    issuer = o.issuer as string;
  }
  const out: { -readonly [K in keyof ResolvedUpstreamCredential]: ResolvedUpstreamCredential[K] } = {
    kind,
    tokenEndpoint: endpoint.href,
    issuer,
    parameters: {},
    encoding: 'form',
    timeoutMs: 10_000,
    clientAuth: { method: 'none' },
    presentsClientCertificate: false,
  };
  if (o.ca !== undefined) {
    assertCaSource(`${f}.ca`, o.ca);
    out.ca = copyCaSource(o.ca);
  }
  if (o.scope !== undefined) {
    assertString(`${f}.scope`, o.scope);
    if (!SCOPE.test(o.scope)) throw new TypeError(`"${f}.scope" must be space-separated scope tokens`);
    out.scope = o.scope;
  }
  for (const key of ['audience', 'resource'] as const) {
    if (o[key] === undefined) continue;
    assertString(`${f}.${key}`, o[key]);
    if (!VISIBLE.test(o[key])) throw new TypeError(`"${f}.${key}" must be visible ASCII (1-512 characters)`);
    out[key] = o[key];
  }
  if (o.parameters !== undefined) {
    assertObject(`${f}.parameters`, o.parameters);
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(o.parameters)) {
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(k) || RESERVED_PARAMETERS.has(k)) {
        throw new TypeError(`"${f}.parameters" must not set ${describeValue(k)}`);
      }
      assertString(`${f}.parameters.${k}`, v);
      if (!VISIBLE.test(v))
        throw new TypeError(`"${f}.parameters.${k}" must be visible ASCII (1-512 characters)`);
      params[k] = v;
    }
    out.parameters = params;
  }
  if (o.encoding !== undefined) {
    assertOneOf(`${f}.encoding`, o.encoding, ['form', 'json'] as const);
    out.encoding = o.encoding;
  }
  if (o.timeoutMs !== undefined) {
    assertInteger(`${f}.timeoutMs`, o.timeoutMs, 100, 60_000);
    out.timeoutMs = o.timeoutMs;
  }

  if (kind === 'clientCredentials') {
    if (o.clientAuth === undefined) throw new TypeError(`"${f}.clientAuth" is required`);
    out.clientAuth = resolveClientAuth(`${f}.clientAuth`, o.clientAuth, env);
  } else if (kind === 'tokenExchange') {
    if (o.subjectToken === undefined) throw new TypeError(`"${f}.subjectToken" is required`);
    const grant = o.grant ?? 'token-exchange';
    assertOneOf(`${f}.grant`, grant, ['token-exchange', 'jwt-bearer'] as const);
    out.grant = grant;
    if (grant === 'jwt-bearer') {
      // RFC 7523 has no token types and no actor: the assertion is the whole request.
      for (const key of ['subjectTokenType', 'actorToken', 'actorTokenType'] as const) {
        if (o[key] !== undefined) throw new TypeError(`"${f}.${key}" is for grant "token-exchange" only`);
      }
    }
    const caller = isCallerToken(o.subjectToken);
    if (caller) {
      assertKnownKeys(`${f}.subjectToken`, o.subjectToken, ['callerToken']);
      // Delegation needs the actor: the workload's own proof that it may act for the caller.
      if (grant !== 'token-exchange' || o.actorToken === undefined) {
        throw new TypeError(
          `"${f}.subjectToken" { callerToken: true } needs grant "token-exchange" and "${f}.actorToken" (the workload's identity)`,
        );
      }
      out.subjectToken = { callerToken: true };
    } else {
      out.subjectToken = resolveSubjectSource(`${f}.subjectToken`, o.subjectToken);
    }
    if (grant === 'token-exchange') {
      out.subjectTokenType =
        caller && o.subjectTokenType === undefined
          ? TOKEN_TYPE_ACCESS_TOKEN
          : tokenType(`${f}.subjectTokenType`, o.subjectTokenType);
    }
    if (o.actorToken !== undefined) {
      out.actorToken = resolveSubjectSource(`${f}.actorToken`, o.actorToken);
      out.actorTokenType = tokenType(`${f}.actorTokenType`, o.actorTokenType);
    } else if (o.actorTokenType !== undefined) {
      throw new TypeError(`"${f}.actorTokenType" needs "${f}.actorToken"`);
    }
    if (o.clientAuth !== undefined) out.clientAuth = resolveClientAuth(`${f}.clientAuth`, o.clientAuth, env);
  } else {
    if (!hasClientCertificate) {
      throw new TypeError(
        `"${f}" needs the upstream's "clientCertificate": the certificate is the credential`,
      );
    }
    if (o.clientId !== undefined) {
      assertString(`${f}.clientId`, o.clientId);
      if (!VISIBLE.test(o.clientId)) throw new TypeError(`"${f}.clientId" must be visible ASCII`);
      out.clientAuth = { method: 'none', clientId: o.clientId };
    }
    out.presentsClientCertificate = true;
  }
  if (out.clientAuth.method === 'tls_client_auth') {
    if (!hasClientCertificate) {
      throw new TypeError(
        `"${f}.clientAuth": tls_client_auth needs the upstream's "clientCertificate" (the same certificate authenticates to the token endpoint)`,
      );
    }
    out.presentsClientCertificate = true;
  }
  // A token endpoint on the upstream's own origin sits behind the same mTLS gate: same certificate.
  if (hasClientCertificate && endpoint.origin === upstreamOrigin) out.presentsClientCertificate = true;
  return out;
}

function isCallerToken(raw: unknown): boolean {
  return typeof raw === 'object' && raw !== null && (raw as { callerToken?: unknown }).callerToken === true;
}

function tokenType(field: string, value: unknown): string {
  if (value === undefined) return TOKEN_TYPE_JWT;
  assertString(field, value);
  if (!/^urn:[\x21-\x7e]{1,200}$/.test(value)) throw new TypeError(`"${field}" must be a token type URN`);
  return value;
}

function resolveSubjectSource(field: string, raw: unknown): ResolvedSubjectTokenSource {
  assertObject(field, raw);
  if ('file' in raw && !('provider' in raw)) {
    assertKnownKeys(field, raw, ['file']);
    assertString(`${field}.file`, raw.file);
    return { file: raw.file };
  }
  if ('provider' in raw && !('file' in raw)) {
    assertKnownKeys(field, raw, ['provider']);
    if (typeof raw.provider !== 'function') {
      throw new TypeError(`"${field}.provider" must be a function (audience, signal) => Promise<{ token }>`);
    }
    return {
      provider: raw.provider as Extract<ResolvedSubjectTokenSource, { provider: unknown }>['provider'],
    };
  }
  throw new TypeError(`"${field}" must be { file: "/path" } or { provider: (audience, signal) => ... }`);
}

const AUTH_METHODS = [
  'private_key_jwt',
  'tls_client_auth',
  'client_secret_basic',
  'client_secret_post',
] as const;

function resolveClientAuth(field: string, raw: unknown, env: NodeJS.ProcessEnv): ResolvedClientAuth {
  assertObject(field, raw);
  assertOneOf(`${field}.method`, raw.method, AUTH_METHODS);
  assertString(`${field}.clientId`, raw.clientId);
  if (!VISIBLE.test(raw.clientId)) throw new TypeError(`"${field}.clientId" must be visible ASCII`);
  const clientId = raw.clientId;
  switch (raw.method) {
    case 'private_key_jwt': {
      assertKnownKeys(field, raw, ['method', 'clientId', 'privateKeyFile', 'kid']);
      assertString(`${field}.privateKeyFile`, raw.privateKeyFile);
      const out: { method: 'private_key_jwt'; clientId: string; privateKeyFile: string; kid?: string } = {
        method: 'private_key_jwt',
        clientId,
        privateKeyFile: raw.privateKeyFile,
      };
      if (raw.kid !== undefined) {
        assertString(`${field}.kid`, raw.kid);
        out.kid = raw.kid;
      }
      return out;
    }
    case 'tls_client_auth':
      assertKnownKeys(field, raw, ['method', 'clientId']);
      return { method: 'tls_client_auth', clientId };
    default:
      // A shared secret only when the method names it: never a default, never guessed.
      assertKnownKeys(field, raw, ['method', 'clientId', 'clientSecret']);
      return {
        method: raw.method,
        clientId,
        clientSecret: readSecret(`${field}.clientSecret`, raw.clientSecret, env),
      };
  }
}

/** A client secret from its env var or file; messages name where, never the value. */
function readSecret(field: string, source: unknown, env: NodeJS.ProcessEnv): string {
  assertObject(field, source);
  let value: string;
  let where: string;
  if ('env' in source && !('file' in source)) {
    assertKnownKeys(field, source, ['env']);
    assertString(`${field}.env`, source.env);
    where = `environment variable ${source.env}`;
    value = (env[source.env] ?? '').trim();
  } else if ('file' in source && !('env' in source)) {
    assertKnownKeys(field, source, ['file']);
    assertString(`${field}.file`, source.file);
    where = `file ${source.file}`;
    try {
      value = readBoundedFile(source.file, 'client secret', MAX_SECRET_FILE_BYTES).toString('utf8').trim();
    } catch (err) {
      if (!isShieldError(err)) throw err;
      throw new TypeError(`"${field}": ${err.message}`, { cause: err });
    }
  } else {
    throw new TypeError(`"${field}" must be { env: "NAME" } or { file: "/path" }`);
  }
  if (value === '') throw new TypeError(`"${field}": ${where} is not set or empty`);
  if (!/^[\x21-\x7e]+$/.test(value)) {
    throw new TypeError(`"${field}": the secret in ${where} must be one line of visible ASCII characters`);
  }
  return value;
}
