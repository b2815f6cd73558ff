/**
 * Attacks on how a workload's identity is read from its certificate: SANs that try to forge a
 * SPIFFE ID through Node's subjectAltName rendering (`DNS:"x, URI:spiffe://..."`, CVE-2021-44532
 * class), SPIFFE IDs that are almost the allowed one (case, trailing slash, port, userinfo, query,
 * percent-encoding, dot segments, a look-alike trust domain), several URI SANs (X509-SVID §2: an
 * SVID has exactly one), a SPIFFE ID only in the CN, and DNS SAN look-alikes.
 *
 * Every certificate here is issued by the CA the server trusts (the attacker got a certificate
 * signed, just not with the identity it claims), so the TLS layer verifies all of them: only the
 * identity parsing stands in the way. The module has no `mtls.trustDomains`, so the allow-list
 * matcher itself is what refuses (403 ERR_CALLER_NOT_ALLOWED), not the trust-domain pre-check.
 *
 * Coverage for docs/threat-model.md "inbound mTLS" and the SPIFFE allow-lists at the socket level (the unit
 * specs cover the parsers with strings; here real certificates go through real handshakes). These
 * held up on the code reviewed; the controls prove each route does let its real caller in.
 */
import 'reflect-metadata';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Controller, Get, Module } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type DevClientOptions, type TestPki } from '@inference-shield/dev-pki';
import {
  Allow,
  AllowSpiffe,
  IdentityModule,
  mtls,
  Principal,
  type ShieldPrincipal,
} from '@inference-shield/identity';
import { startApp, type TestApp } from '../../support/harness.js';
import { callOnce, serveOptionalMtls } from './attack-kit.js';

const GW = 'spiffe://shield.local/ns/prod/gw';

@Controller()
class WorkloadController {
  @Get('gw')
  @AllowSpiffe(GW)
  gw(@Principal() caller: ShieldPrincipal): { spiffeId: string | null } {
    return { spiffeId: caller.spiffeId ?? null };
  }

  @Get('domain')
  @AllowSpiffe('spiffe://shield.local')
  domain(@Principal() caller: ShieldPrincipal): { spiffeId: string | null } {
    return { spiffeId: caller.spiffeId ?? null };
  }

  @Get('dns')
  @Allow(mtls({ sans: ['dns:worker.internal'] }))
  dns(): { ok: true } {
    return { ok: true };
  }
}

@Module({
  imports: [IdentityModule.forRoot({ mtls: {} })],
  controllers: [WorkloadController],
})
class WorkloadApp {}

const dir = mkdtempSync(join(tmpdir(), 'attack-san-'));
let pki: TestPki;
let running: TestApp;

beforeAll(async () => {
  pki = await createTestPki(dir);
  running = await startApp(WorkloadApp, serveOptionalMtls(pki));
});

afterAll(async () => {
  await running?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function statusFor(path: string, cert: DevClientOptions): Promise<number> {
  const client = await pki.ca.authority.issueClient({ commonName: 'attacker', ...cert });
  // The trick really is in the certificate (a SAN silently dropped at issuance would prove nothing).
  const san = new X509Certificate(client.certPem).subjectAltName ?? '';
  // Node escapes a comma inside a name as \u002c (its CVE-2021-44532 fix): either form counts.
  for (const value of [...(cert.uris ?? []), ...(cert.dnsNames ?? [])]) {
    expect([value, value.replaceAll(',', '\\u002c')].some((v) => san.includes(v))).toBe(true);
  }
  return (await callOnce(running.port, pki, path, { client })).status;
}

describe('a CA-signed certificate claiming an identity it does not have', () => {
  it('control: the real gateway passes /gw and /domain, a worker.internal DNS SAN passes /dns', async () => {
    const gw = await pki.ca.authority.issueClient({ spiffeId: GW });
    const r = await callOnce(running.port, pki, '/gw', { client: gw });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ spiffeId: GW });
    expect(await statusFor('/domain', { spiffeId: GW })).toBe(200);
    expect(await statusFor('/dns', { dnsNames: ['worker.internal'] })).toBe(200);
    // DNS names compare case-insensitively (RFC 4343): the same host, not a trick.
    expect(await statusFor('/dns', { dnsNames: ['WORKER.Internal'] })).toBe(200);
  });

  it.each<[string, DevClientOptions]>([
    ['a DNS SAN that spells ", URI:<the gateway ID>"', { dnsNames: [`x, URI:${GW}`] }],
    ['a DNS SAN that is the gateway ID', { dnsNames: [GW] }],
    ['the gateway ID plus a second URI SAN', { uris: [GW, 'https://gw.example'] }],
    ['the gateway ID twice', { uris: [GW, GW] }],
    ['a trailing slash', { uris: [`${GW}/`] }],
    ['an uppercase scheme', { uris: ['SPIFFE://shield.local/ns/prod/gw'] }],
    ['an uppercase trust domain', { uris: ['spiffe://SHIELD.local/ns/prod/gw'] }],
    ['a port', { uris: ['spiffe://shield.local:443/ns/prod/gw'] }],
    ['userinfo', { uris: ['spiffe://gw@shield.local/ns/prod/gw'] }],
    ['a query', { uris: [`${GW}?role=admin`] }],
    ['a fragment', { uris: [`${GW}#x`] }],
    ['a percent-encoded path', { uris: ['spiffe://shield.local/ns/prod/%67w'] }],
    ['a dot segment', { uris: ['spiffe://shield.local/ns/prod/./gw'] }],
    ['a dot-dot segment', { uris: ['spiffe://shield.local/ns/prod/x/../gw'] }],
    ['an empty segment', { uris: ['spiffe://shield.local/ns//prod/gw'] }],
    ['a look-alike trust domain', { uris: ['spiffe://shield.local.evil.example/ns/prod/gw'] }],
    ['a trust domain with a trailing dot', { uris: ['spiffe://shield.local./ns/prod/gw'] }],
    ['the ID only in the subject CN', { commonName: GW }],
  ])('%s: refused on /gw (403)', async (_name, cert) => {
    expect(await statusFor('/gw', cert)).toBe(403);
  });

  it.each<[string, DevClientOptions]>([
    ['a DNS SAN that spells ", URI:<an ID of the domain>"', { dnsNames: [`x, URI:${GW}`] }],
    ['two URI SANs of the domain', { uris: [GW, 'spiffe://shield.local/ns/prod/other'] }],
    ['a port on the trust domain', { uris: ['spiffe://shield.local:8443/x'] }],
    ['a look-alike trust domain', { uris: ['spiffe://shield.local.evil.example/x'] }],
    ['a trust-domain ID without a workload path', { uris: ['spiffe://shield.local'] }],
  ])('%s: refused on the trust-domain route (403)', async (_name, cert) => {
    expect(await statusFor('/domain', cert)).toBe(403);
  });

  it.each<[string, DevClientOptions]>([
    ['a trailing-dot host', { dnsNames: ['worker.internal.'] }],
    ['a DNS SAN that spells ", DNS:worker.internal"', { dnsNames: ['x, DNS:worker.internal'] }],
    ['the host only in a URI SAN', { uris: ['dns:worker.internal'] }],
    ['the host only in the CN', { commonName: 'worker.internal' }],
    ['a sub-domain', { dnsNames: ['evil.worker.internal'] }],
  ])('%s: refused on the DNS SAN route (403)', async (_name, cert) => {
    expect(await statusFor('/dns', cert)).toBe(403);
  });
});
