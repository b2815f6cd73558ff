/**
 * A real DPoP client for the identity tests: oauth4webapi's `DPoP()` handle makes every proof
 * (the way an application's client would), and `fetch` goes through undici trusting the test CA.
 *
 * The app is configured with a public origin (`PUBLIC_ORIGIN`), as a service behind its own DNS
 * name; the fetch below routes that origin to the app on loopback, the way a load balancer would.
 * So a proof's `htu` names the public origin, never `localhost:<port>`.
 */
import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { Agent, fetch as undiciFetch } from 'undici';

type KeyPair = Awaited<ReturnType<typeof oauth.generateKeyPair>>;

/** The origin the test apps are configured with (`dpop.origin`). */
export const PUBLIC_ORIGIN = 'https://api.shield.test';

/** What one DPoP call sent and got back. */
export interface DpopCallResult {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
  readonly text: string;
  /** The `DPoP` header the client sent (to replay it). */
  readonly proof: string;
  /** The `Authorization` header the client sent. */
  readonly authorization: string;
}

/** Changes a proof's header or claims before it is signed (oauth4webapi's `modifyAssertion`). */
export type ProofTamper = (header: Record<string, unknown>, payload: Record<string, unknown>) => void;

/** A customFetch that sends requests for `PUBLIC_ORIGIN` to `https://localhost:<port>`, trusting `ca`. */
export function routedFetch(
  ca: string,
  port: number,
  seen?: (headers: Record<string, string>) => void,
): typeof fetch {
  const dispatcher = new Agent({ connect: { ca, rejectUnauthorized: true } });
  return ((url: string, init: RequestInit & { headers?: Record<string, string> }) => {
    seen?.(init.headers ?? {});
    const target = url.startsWith(PUBLIC_ORIGIN)
      ? `https://localhost:${port}${url.slice(PUBLIC_ORIGIN.length)}`
      : url;
    return undiciFetch(target, { ...(init as object), dispatcher } as Parameters<typeof undiciFetch>[1]);
  }) as unknown as typeof fetch;
}

/** One client key pair and its DPoP handle (which caches the server's nonces per origin). */
export class DpopClient {
  private constructor(
    readonly client: oauth.Client,
    readonly keyPair: KeyPair,
    readonly handle: oauth.DPoPHandle,
    /** RFC 7638 thumbprint of the public key: what a token bound to this client carries as `cnf.jkt`. */
    readonly jkt: string,
  ) {}

  static async create(clientId = 'dpop-test-client', alg = 'ES256'): Promise<DpopClient> {
    const client: oauth.Client = { client_id: clientId };
    const keyPair = await oauth.generateKeyPair(alg, { extractable: true });
    const handle = oauth.DPoP(client, keyPair);
    return new DpopClient(client, keyPair, handle, await handle.calculateThumbprint());
  }

  /**
   * A proof for one request, signed now, not sent: for a test that sends it itself (on a kept
   * connection, or twice). Same shape as oauth4webapi's proofs.
   */
  async proof(method: string, path: string, accessToken: string): Promise<string> {
    const jwk = await exportJWK(this.keyPair.publicKey);
    return new SignJWT({
      htm: method,
      htu: `${PUBLIC_ORIGIN}${path}`,
      ath: createHash('sha256').update(accessToken).digest('base64url'),
    })
      .setProtectedHeader({
        alg: 'ES256',
        typ: 'dpop+jwt',
        jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } as never,
      })
      .setJti(randomUUID())
      .setIssuedAt()
      .sign(this.keyPair.privateKey);
  }

  /**
   * One request to `PUBLIC_ORIGIN + path` on the app at `port`, with `Authorization: DPoP` and a
   * fresh proof (`tamper` changes it before signing, on a one-off handle). `scheme: 'Bearer'`
   * sends the same token as a bearer token, without a proof.
   */
  async call(
    port: number,
    ca: string,
    path: string,
    accessToken: string,
    opts: { method?: string; tamper?: ProofTamper; body?: string; headers?: Record<string, string> } = {},
  ): Promise<DpopCallResult> {
    let sent: Record<string, string> = {};
    const customFetch = routedFetch(ca, port, (h) => (sent = h));
    const handle =
      opts.tamper === undefined
        ? this.handle
        : oauth.DPoP(this.client, this.keyPair, {
            [oauth.modifyAssertion]: opts.tamper as oauth.ModifyAssertionFunction,
          });
    let response: Response;
    try {
      response = await oauth.protectedResourceRequest(
        accessToken,
        opts.method ?? 'POST',
        new URL(`${PUBLIC_ORIGIN}${path}`),
        new Headers({ 'content-type': 'application/json', ...opts.headers }),
        opts.body ?? '{}',
        { DPoP: handle, [oauth.customFetch]: customFetch },
      );
    } catch (err) {
      // A 401 with a challenge is an error for oauth4webapi; the response is what the test reads.
      if (!(err instanceof oauth.WWWAuthenticateChallengeError)) throw err;
      response = err.response;
    }
    const text = await response.text();
    let body: Record<string, unknown> = {};
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null) body = parsed as Record<string, unknown>;
    } catch {
      body = {};
    }
    return {
      status: response.status,
      headers: response.headers,
      body,
      text,
      proof: sent['dpop'] ?? '',
      authorization: sent['authorization'] ?? '',
    };
  }
}
