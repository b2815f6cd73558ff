import 'reflect-metadata';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { DevCertificateAuthority } from '@inference-shield/dev-pki';
import { parseX509SvidResponse, type X509SvidMessage } from './x509-svid.parse.js';

const ID = 'spiffe://example.org/workload';
const der = (pem: string): Buffer => new X509Certificate(pem).raw;
const keyDer = (pem: string): Buffer => createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });

let ca: DevCertificateAuthority;
let other: DevCertificateAuthority;
let good: X509SvidMessage & { bundle: Buffer };

async function svid(
  opts: Parameters<DevCertificateAuthority['issueClient']>[0],
  by = ca,
): Promise<X509SvidMessage & { bundle: Buffer }> {
  const issued = await by.issueClient({ extendedKeyUsage: ['serverAuth', 'clientAuth'], ...opts });
  return {
    spiffe_id: opts?.spiffeId ?? ID,
    x509_svid: der(issued.certPem),
    x509_svid_key: keyDer(issued.keyPem),
    bundle: der(ca.certPem),
    hint: '',
  };
}

beforeAll(async () => {
  ca = await DevCertificateAuthority.create();
  other = await DevCertificateAuthority.create();
  good = await svid({ spiffeId: ID });
});

describe('parseX509SvidResponse', () => {
  it('turns a valid response into PEM material', () => {
    const m = parseX509SvidResponse(
      { svids: [good], federated_bundles: { 'spiffe://partner.example': der(other.certPem) } },
      { now: Date.now() },
    );
    expect(m).toMatchObject({ spiffeId: ID, trustDomain: 'example.org', hint: undefined });
    expect([...m.bundles.keys()]).toEqual(['example.org', 'partner.example']);
    expect(m.bundlesPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(m.chainPem).toBe(m.certPem);
    expect(Object.isFrozen(m)).toBe(true);
  });

  it('picks the SVID asked for among several', async () => {
    const second = await svid({ spiffeId: 'spiffe://example.org/second' });
    const m = parseX509SvidResponse(
      { svids: [good, second] },
      { now: Date.now(), spiffeId: 'spiffe://example.org/second' },
    );
    expect(m.spiffeId).toBe('spiffe://example.org/second');
    expect(parseX509SvidResponse({ svids: [good, second] }, { now: Date.now() }).spiffeId).toBe(ID);
  });

  it.each<[string, () => Promise<object>, RegExp]>([
    ['no SVID', async () => ({ svids: [] }), /no SVID/],
    ['33 SVIDs', async () => ({ svids: Array.from({ length: 33 }, () => good) }), /more than 32/],
    [
      'the asked SPIFFE ID absent',
      async () => ({ svids: [good], _ask: 'spiffe://example.org/x' }),
      /no SVID for/,
    ],
    [
      'a trust-domain SPIFFE ID',
      async () => ({ svids: [{ ...good, spiffe_id: 'spiffe://example.org' }] }),
      /workload SPIFFE ID/,
    ],
    [
      'two URI SANs',
      async () => ({ svids: [await svid({ spiffeId: ID, uris: ['spiffe://example.org/b'] })] }),
      /exactly one URI SAN/,
    ],
    [
      'no URI SAN',
      async () => ({ svids: [{ ...(await svid({ commonName: 'x' })), spiffe_id: ID }] }),
      /exactly one URI SAN/,
    ],
    [
      'a CA as the leaf',
      async () => ({
        svids: [{ ...good, x509_svid: der(ca.certPem), x509_svid_key: Buffer.from(keyDer(ca.keyPem)) }],
      }),
      /URI SAN|CA certificate/,
    ],
    [
      'a key that is not PKCS#8 DER',
      async () => ({ svids: [{ ...good, x509_svid_key: Buffer.from('not a key') }] }),
      /PKCS#8/,
    ],
    [
      'no bundle',
      async () => ({ svids: [{ ...good, bundle: Buffer.alloc(0) }] }),
      /bundle of example.org is missing/,
    ],
    [
      'a chain issued by another CA',
      async () => ({ svids: [await svid({ spiffeId: ID }, other)] }),
      /does not chain/,
    ],
    [
      'a federated key that is not a trust domain',
      async () => ({ svids: [good], federated_bundles: { 'spiffe://p.example/w': der(other.certPem) } }),
      /invalid trust domain/,
    ],
    [
      'a federated entry for its own trust domain',
      async () => ({ svids: [good], federated_bundles: { 'example.org': der(other.certPem) } }),
      /repeat the trust domain/,
    ],
    [
      'not yet valid',
      async () => ({
        svids: [
          await svid({
            spiffeId: ID,
            notBefore: new Date(Date.now() + 3600_000),
            notAfter: new Date(Date.now() + 7200_000),
          }),
        ],
      }),
      /not valid before/,
    ],
  ])('refuses %s with ERR_SPIFFE_SVID_INVALID', async (_name, make, reason) => {
    const response = (await make()) as { _ask?: string; svids?: unknown };
    expect(() => parseX509SvidResponse(response, { now: Date.now(), spiffeId: response._ask })).toThrow(
      expect.objectContaining({ code: 'ERR_SPIFFE_SVID_INVALID', message: expect.stringMatching(reason) }),
    );
  });

  it('never quotes key material in a refusal', async () => {
    const wrongKey = { ...good, x509_svid_key: (await svid({ spiffeId: ID })).x509_svid_key };
    let message = '';
    try {
      parseX509SvidResponse({ svids: [wrongKey] }, { now: Date.now() });
    } catch (err) {
      message = String((err as Error).message);
    }
    expect(message).toMatch(/does not match/);
    expect(message).not.toContain((wrongKey.x509_svid_key as Buffer).toString('base64').slice(10, 40));
  });
});
