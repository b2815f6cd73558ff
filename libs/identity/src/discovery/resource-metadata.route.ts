import type { HttpAdapterHost } from '@nestjs/core';
import type { ChallengeParams } from '@inference-shield/core/internal';
import { importPKCS8, SignJWT } from 'jose';
import { defaultAlgorithm, readPrivateKey } from '../introspection/private-key.js';
import type { ResolvedResourceMetadataOptions } from './resource-metadata-options.interface.js';

/** The metadata answer, built once at start-up: nothing is computed per request. */
export interface ResourceMetadataResponse {
  readonly path: string;
  readonly body: Readonly<Record<string, unknown>>;
  readonly cacheControl: string;
}

/**
 * The RFC 9728 document, with `signed_metadata` (§2.2) when configured: a JWT holding the same
 * members and `iss`, signed now with the configured key. A bad key stops `app.init()`.
 */
export async function buildResourceMetadataResponse(
  options: ResolvedResourceMetadataOptions,
): Promise<ResourceMetadataResponse> {
  const body: Record<string, unknown> = { ...options.document };
  const signed = options.signed;
  if (signed !== undefined) {
    const field = 'resourceMetadata.signed';
    const keyObject = readPrivateKey(`${field}.key`, signed.key);
    const alg = signed.alg ?? defaultAlgorithm(field, keyObject);
    let key: Awaited<ReturnType<typeof importPKCS8>>;
    try {
      key = await importPKCS8(keyObject.export({ type: 'pkcs8', format: 'pem' }).toString(), alg);
    } catch (err) {
      throw new TypeError(`"${field}.key" cannot sign with ${alg}`, { cause: err });
    }
    body['signed_metadata'] = await new SignJWT({ ...options.document })
      .setProtectedHeader({ alg, typ: 'JWT', ...(signed.kid !== undefined ? { kid: signed.kid } : {}) })
      .setIssuer(signed.issuer)
      .setIssuedAt()
      .sign(key);
  }
  return Object.freeze({
    path: options.path,
    body: Object.freeze(body),
    cacheControl: options.maxAgeSeconds === 0 ? 'no-cache' : `public, max-age=${options.maxAgeSeconds}`,
  });
}

/**
 * Serves the document on the HTTP adapter itself (Express or Fastify), outside Nest's router: a
 * public route that no guard, no policy and no global prefix applies to, added only because the
 * application configured `resourceMetadata`. `GET` only (Express also answers `HEAD`).
 */
export function installResourceMetadataRoute(
  adapter: HttpAdapterHost['httpAdapter'],
  response: ResourceMetadataResponse,
): void {
  adapter.get(response.path, (_req: unknown, res: unknown) => {
    // Replaces the bootstrap's default `no-store`: the document is public and the same for all.
    adapter.setHeader(res, 'Cache-Control', response.cacheControl);
    adapter.reply(res, response.body, 200);
  });
}

/** What every challenge of this module carries: RFC 9728 §5.1 `resource_metadata`, when configured. */
export function challengeParamsOf(metadata: ResolvedResourceMetadataOptions | undefined): ChallengeParams {
  return Object.freeze(metadata === undefined ? {} : { resourceMetadata: metadata.url });
}
