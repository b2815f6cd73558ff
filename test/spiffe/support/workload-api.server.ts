/**
 * A real SPIFFE Workload API server for tests: grpc-js serving the vendored workload.proto on a unix
 * socket in a temp folder, issuing X.509-SVIDs from the dev PKI and JWT-SVIDs signed with an ES256
 * key. It requires the `workload.spiffe.io: true` header as SPIRE does, and can rotate, change
 * bundles, send malformed updates, and stop and restart on the same socket.
 */
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { createPrivateKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { exportJWK, jwtVerify, SignJWT, createLocalJWKSet } from 'jose';
import { DevCertificateAuthority } from '@inference-shield/dev-pki';
import { WORKLOAD_API_HEADER, workloadApiService } from '@inference-shield/spiffe/internal';

/** One X.509-SVID as the agent sends it: DER chain, PKCS#8 DER key, DER bundle. */
export interface SvidMessage {
  spiffe_id: string;
  x509_svid: Buffer;
  x509_svid_key: Buffer;
  bundle: Buffer;
  hint: string;
}

/** An `X509SVIDResponse`, or a status to fail the stream with. */
export type X509Answer =
  { svids: SvidMessage[]; federated_bundles?: Record<string, Buffer>; crl?: Buffer[] } | { fail: number };

/** DER of every certificate in a PEM text, concatenated (the Workload API's encoding). */
export function derOf(...pems: string[]): Buffer {
  const ders: Buffer[] = [];
  for (const pem of pems) {
    for (const block of pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
      ders.push(new X509Certificate(block).raw);
    }
  }
  return Buffer.concat(ders);
}

/** PKCS#8 DER of a PEM private key. */
export function keyDerOf(pem: string): Buffer {
  return createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
}

/** Issue an X.509-SVID (serverAuth + clientAuth, DNS SAN localhost) from `ca`. */
export async function issueSvid(
  ca: DevCertificateAuthority,
  spiffeId: string,
  opts: { notAfter?: Date; notBefore?: Date; bundle?: string[] } = {},
): Promise<SvidMessage & { certPem: string; fingerprint256: string }> {
  const issued = await ca.issueClient({
    spiffeId,
    dnsNames: ['localhost'],
    extendedKeyUsage: ['serverAuth', 'clientAuth'],
    ...(opts.notAfter !== undefined ? { notAfter: opts.notAfter } : {}),
    ...(opts.notBefore !== undefined ? { notBefore: opts.notBefore } : {}),
  });
  return {
    spiffe_id: spiffeId,
    x509_svid: derOf(issued.certPem),
    x509_svid_key: keyDerOf(issued.keyPem),
    bundle: derOf(...(opts.bundle ?? [ca.certPem])),
    hint: '',
    certPem: issued.certPem,
    fingerprint256: issued.fingerprint256,
  };
}

interface Call {
  readonly method: string;
  readonly header: string | undefined;
}

/** A test agent. */
export class TestWorkloadApi {
  readonly dir: string;
  readonly socketPath: string;
  /** `unix:///…/agent.sock`. */
  readonly address: string;
  /** Every call received, with the value of its `workload.spiffe.io` header. */
  readonly calls: Call[] = [];
  /** JWT-SVIDs issued so far. */
  jwtSvidsIssued = 0;
  /** Lifetime of the JWT-SVIDs issued, in seconds. */
  jwtSvidTtlSeconds = 60;
  /** When set, FetchJWTSVID fails with this status. */
  jwtFailure: number | undefined;
  /** When set, FetchJWTSVID answers this token (a hostile agent) instead of signing one. */
  jwtSvidOverride: string | undefined;
  private server: Server | undefined;
  private x509: X509Answer = { fail: status.PERMISSION_DENIED };
  private jwtBundles: Record<string, Buffer> | undefined;
  private readonly x509Streams = new Set<ServerWritableStream<unknown, unknown>>();
  private readonly jwtBundleStreams = new Set<ServerWritableStream<unknown, unknown>>();
  readonly jwtKey: { privateKey: KeyObject; publicKey: KeyObject; kid: string };

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'spiffe-agent-'));
    this.socketPath = join(this.dir, 'agent.sock');
    this.address = `unix://${this.socketPath}`;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.jwtKey = { privateKey, publicKey, kid: 'test-jwt-key-1' };
  }

  /** The JWKS (SPIFFE bundle form, `use: jwt-svid`) of the JWT signing key. */
  async jwks(): Promise<Buffer> {
    const jwk = await exportJWK(this.jwtKey.publicKey);
    return Buffer.from(JSON.stringify({ keys: [{ ...jwk, kid: this.jwtKey.kid, use: 'jwt-svid' }] }));
  }

  /** Set what FetchX509SVID answers, and push it to every open stream. */
  setX509(answer: X509Answer): void {
    this.x509 = answer;
    for (const stream of this.x509Streams) this.sendX509(stream);
  }

  /** Set the JWT bundles, and push them to every open stream. */
  setJwtBundles(bundles: Record<string, Buffer>): void {
    this.jwtBundles = bundles;
    for (const stream of this.jwtBundleStreams) stream.write({ bundles });
  }

  /** Number of FetchX509SVID streams open now. */
  get openX509Streams(): number {
    return this.x509Streams.size;
  }

  async start(): Promise<void> {
    if (this.server !== undefined) return;
    try {
      unlinkSync(this.socketPath);
    } catch {
      // not there
    }
    const server = new Server();
    server.addService(
      workloadApiService().service as Parameters<Server['addService']>[0],
      this.implementation(),
    );
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${this.socketPath}`, ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    this.server = server;
  }

  /** Stop at once (an agent crash or restart): open streams fail with UNAVAILABLE. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const stream of [...this.x509Streams, ...this.jwtBundleStreams]) {
      stream.emit('error', { code: status.UNAVAILABLE, details: 'agent stopping' });
    }
    this.x509Streams.clear();
    this.jwtBundleStreams.clear();
    server?.forceShutdown();
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private sendX509(stream: ServerWritableStream<unknown, unknown>): void {
    const answer = this.x509;
    if ('fail' in answer) {
      stream.emit('error', { code: answer.fail, details: 'no identity issued' });
      this.x509Streams.delete(stream);
      return;
    }
    stream.write({
      svids: answer.svids,
      federated_bundles: answer.federated_bundles ?? {},
      crl: answer.crl ?? [],
    });
  }

  /** SPIRE refuses any call without the security header (Workload Endpoint §2). */
  private admitted(method: string, metadata: { get(key: string): unknown[] }): boolean {
    const value = metadata.get(WORKLOAD_API_HEADER)[0];
    this.calls.push({ method, header: typeof value === 'string' ? value : undefined });
    return value === 'true';
  }

  private implementation(): UntypedServiceImplementation {
    const denied = { code: status.INVALID_ARGUMENT, details: 'security header missing from request' };
    return {
      FetchX509SVID: (stream: ServerWritableStream<unknown, unknown>) => {
        if (!this.admitted('FetchX509SVID', stream.metadata)) {
          stream.emit('error', denied);
          return;
        }
        this.x509Streams.add(stream);
        stream.on('cancelled', () => this.x509Streams.delete(stream));
        this.sendX509(stream);
      },
      FetchX509Bundles: (stream: ServerWritableStream<unknown, unknown>) => {
        if (!this.admitted('FetchX509Bundles', stream.metadata)) {
          stream.emit('error', denied);
          return;
        }
        const answer = this.x509;
        if ('fail' in answer) {
          stream.emit('error', { code: answer.fail, details: 'no identity issued' });
          return;
        }
        const [first] = answer.svids;
        const own =
          first !== undefined ? { [`spiffe://${new URL(first.spiffe_id).host}`]: first.bundle } : {};
        stream.write({ crl: [], bundles: { ...own, ...(answer.federated_bundles ?? {}) } });
      },
      FetchJWTBundles: (stream: ServerWritableStream<unknown, unknown>) => {
        if (!this.admitted('FetchJWTBundles', stream.metadata)) {
          stream.emit('error', denied);
          return;
        }
        this.jwtBundleStreams.add(stream);
        stream.on('cancelled', () => this.jwtBundleStreams.delete(stream));
        if (this.jwtBundles !== undefined) stream.write({ bundles: this.jwtBundles });
      },
      FetchJWTSVID: (
        call: ServerUnaryCall<{ audience: string[]; spiffe_id: string }, unknown>,
        done: sendUnaryData<unknown>,
      ) => {
        if (!this.admitted('FetchJWTSVID', call.metadata)) return done(denied);
        if (this.jwtFailure !== undefined) return done({ code: this.jwtFailure, details: 'unavailable' });
        if (this.jwtSvidOverride !== undefined) {
          const sub =
            call.request.spiffe_id || ('fail' in this.x509 ? '' : (this.x509.svids[0]?.spiffe_id ?? ''));
          return done(null, { svids: [{ spiffe_id: sub, svid: this.jwtSvidOverride, hint: '' }] });
        }
        const answer = this.x509;
        const id = call.request.spiffe_id || ('fail' in answer ? undefined : answer.svids[0]?.spiffe_id);
        if (id === undefined || call.request.audience.length === 0) {
          return done({ code: status.INVALID_ARGUMENT, details: 'audience or identity missing' });
        }
        const now = Math.floor(Date.now() / 1000);
        this.jwtSvidsIssued++;
        void new SignJWT({})
          .setProtectedHeader({ alg: 'ES256', kid: this.jwtKey.kid, typ: 'JWT' })
          .setSubject(id)
          .setAudience(call.request.audience)
          .setIssuedAt(now)
          .setExpirationTime(now + this.jwtSvidTtlSeconds)
          // A counter, so two tokens of the same second differ.
          .setJti(`jti-${this.jwtSvidsIssued}`)
          .sign(this.jwtKey.privateKey)
          .then(
            (svid) => done(null, { svids: [{ spiffe_id: id, svid, hint: '' }] }),
            (err: Error) => done(err),
          );
      },
      ValidateJWTSVID: (
        call: ServerUnaryCall<{ audience: string; svid: string }, unknown>,
        done: sendUnaryData<unknown>,
      ) => {
        if (!this.admitted('ValidateJWTSVID', call.metadata)) return done(denied);
        void this.jwks()
          .then((jwks) =>
            jwtVerify(call.request.svid, createLocalJWKSet(JSON.parse(jwks.toString()) as never), {
              audience: call.request.audience,
            }),
          )
          .then(
            ({ payload }) =>
              done(null, {
                spiffe_id: payload.sub,
                claims: { fields: { sub: { stringValue: payload.sub ?? '' } } },
              }),
            () => done({ code: status.INVALID_ARGUMENT, details: 'invalid JWT-SVID' }),
          );
      },
      FetchWITSVID: (stream: ServerWritableStream<unknown, unknown>) =>
        stream.emit('error', { code: status.UNIMPLEMENTED, details: 'not in this test agent' }),
      FetchWITBundles: (stream: ServerWritableStream<unknown, unknown>) =>
        stream.emit('error', { code: status.UNIMPLEMENTED, details: 'not in this test agent' }),
    };
  }
}

/** A started test agent. */
export async function startWorkloadApi(): Promise<TestWorkloadApi> {
  const agent = new TestWorkloadApi();
  await agent.start();
  return agent;
}

export { DevCertificateAuthority, status };
