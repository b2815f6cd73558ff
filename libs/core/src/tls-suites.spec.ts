import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { describe, expect, it } from 'vitest';
import {
  cipherString,
  describeKeyExchangeGroups,
  detectKeyExchangeGroups,
  opensslOffersHybridGroups,
  ECDH_CURVES,
  groupNames,
  keyExchangeGroups,
  PQ_ECDH_CURVES,
  PQ_HYBRID_GROUP,
  TLS12_CIPHERS,
  TLS13_CIPHERS,
} from './tls-suites.js';

/** OpenSSL 3.5 brought ML-KEM and the hybrid groups; read apart from our own probe. */
function opensslHasMlKem(version = process.versions.openssl ?? '0.0'): boolean {
  const [major = 0, minor = 0] = version.split('.').map((n) => Number.parseInt(n, 10));
  return major > 3 || (major === 3 && minor >= 5);
}

describe('cipherString', () => {
  it('lists the TLS 1.3 suites, then the TLS 1.2 ones, and OpenSSL takes it', () => {
    expect(cipherString().split(':')).toEqual([...TLS13_CIPHERS, ...TLS12_CIPHERS]);
    expect(() => createSecureContext({ ciphers: cipherString() })).not.toThrow();
  });
});

describe('groupNames', () => {
  it.each([
    [ECDH_CURVES, ['X25519', 'P-256', 'P-384']],
    [PQ_ECDH_CURVES, ['X25519MLKEM768', 'X25519', 'P-256', 'P-384']],
    ['?*X25519MLKEM768 / ?*X25519:?secp256r1', ['X25519MLKEM768', 'X25519', 'secp256r1']],
  ])('%s', (list, names) => {
    expect(groupNames(list)).toEqual(names);
  });
});

describe('the post-quantum group list', () => {
  it('puts the hybrid first, alone in its tuple, with key shares for it and X25519', () => {
    expect(PQ_ECDH_CURVES.startsWith(`*${PQ_HYBRID_GROUP}/`)).toBe(true);
    expect(groupNames(PQ_ECDH_CURVES).slice(1).join(':')).toBe(ECDH_CURVES);
  });
});

describe('detectKeyExchangeGroups', () => {
  it('takes the post-quantum list when the probe accepts it', () => {
    const probed: string[] = [];
    const g = detectKeyExchangeGroups((curve) => probed.push(curve), '3.5.9');
    expect(probed).toEqual([PQ_ECDH_CURVES]);
    expect(g).toEqual({
      ecdhCurve: PQ_ECDH_CURVES,
      names: ['X25519MLKEM768', 'X25519', 'P-256', 'P-384'],
      postQuantum: true,
      openssl: '3.5.9',
    });
    expect(Object.isFrozen(g)).toBe(true);
  });

  it('falls back to the classical groups when OpenSSL 3.5 refuses the hybrid', () => {
    const g = detectKeyExchangeGroups(() => {
      throw new Error('Failed to set ECDH curve');
    }, '3.5.9');
    expect(g).toMatchObject({ ecdhCurve: ECDH_CURVES, postQuantum: false, openssl: '3.5.9' });
    expect(g.names).toEqual(['X25519', 'P-256', 'P-384']);
  });

  // A refused probe leaves an entry on OpenSSL's error queue that a later createPrivateKey trips on.
  it.each(['3.0.19', '3.4.1', '1.1.1w', 'unknown'])(
    'never probes OpenSSL %s (known to lack the group)',
    (v) => {
      const probed: string[] = [];
      const g = detectKeyExchangeGroups((curve) => probed.push(curve), v);
      expect(probed).toEqual([]);
      expect(g).toMatchObject({ ecdhCurve: ECDH_CURVES, postQuantum: false, openssl: v });
    },
  );

  it.each([
    ['3.5.0', true],
    ['3.5.9', true],
    ['3.6.0', true],
    ['4.0.0', true],
    ['3.4.9', false],
    ['3.0.19+quic', false],
  ])('opensslOffersHybridGroups(%s) is %s', (v, expected) => {
    expect(opensslOffersHybridGroups(v)).toBe(expected);
  });
});

describe('keyExchangeGroups on this runtime', () => {
  const pq = opensslHasMlKem();

  it(`offers the hybrid exactly when OpenSSL is 3.5 or later (here ${process.versions.openssl})`, () => {
    const g = keyExchangeGroups();
    expect(g.postQuantum).toBe(pq);
    expect(g.ecdhCurve).toBe(pq ? PQ_ECDH_CURVES : ECDH_CURVES);
    expect(g.openssl).toBe(process.versions.openssl);
  });

  it('is probed once: the same frozen object every time', () => {
    expect(keyExchangeGroups()).toBe(keyExchangeGroups());
  });

  it('gives a list OpenSSL accepts', () => {
    expect(() => createSecureContext({ ecdhCurve: keyExchangeGroups().ecdhCurve })).not.toThrow();
    if (pq) expect(() => createSecureContext({ ecdhCurve: PQ_ECDH_CURVES })).not.toThrow();
  });

  it('leaves private keys readable afterwards (no stale OpenSSL error)', () => {
    keyExchangeGroups();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' });
    expect(createPrivateKey(pem).asymmetricKeyType).toBe('ec');
  });
});

describe('describeKeyExchangeGroups', () => {
  it.each([
    [
      true,
      '3.5.9',
      'key exchange groups X25519MLKEM768, X25519, P-256, P-384 (post-quantum hybrid X25519MLKEM768 first; OpenSSL 3.5.9)',
    ],
    [
      false,
      '3.0.19',
      'key exchange groups X25519, P-256, P-384 (classical only: OpenSSL 3.0.19 offers no X25519MLKEM768; Node 24+ with OpenSSL 3.5 does)',
    ],
  ])('post-quantum %s', (accepted, openssl, line) => {
    const g = detectKeyExchangeGroups(() => {
      if (!accepted) throw new Error('refused');
    }, openssl);
    expect(describeKeyExchangeGroups(g)).toBe(line);
  });
});
