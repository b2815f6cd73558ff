import { constants } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { describe, expect, it } from 'vitest';
import type { LoadedTlsBundle } from '@inference-shield/core/internal';
import { resolveHttpsOptions } from './https-options.resolver.js';
import {
  cipherString,
  SECURE_OPTIONS,
  secureContextOptions,
  TLS12_CIPHERS,
  TLS13_CIPHERS,
} from './tls-policy.js';

describe('TLS policy constants', () => {
  it('lists only ECDHE + AEAD TLS 1.2 suites', () => {
    for (const suite of TLS12_CIPHERS) {
      expect(suite).toMatch(/^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
    }
    expect(TLS12_CIPHERS).toHaveLength(6);
  });

  it('names the TLS 1.3 suites explicitly, before the TLS 1.2 ones', () => {
    expect(cipherString(TLS12_CIPHERS).split(':')).toEqual([...TLS13_CIPHERS, ...TLS12_CIPHERS]);
  });

  it('is a cipher string OpenSSL accepts', () => {
    expect(() =>
      createSecureContext({ ciphers: cipherString(TLS12_CIPHERS), minVersion: 'TLSv1.2' }),
    ).not.toThrow();
  });

  it('refuses renegotiation and every protocol below TLS 1.2', () => {
    for (const flag of [
      'SSL_OP_NO_RENEGOTIATION',
      'SSL_OP_NO_SSLv3',
      'SSL_OP_NO_TLSv1',
      'SSL_OP_NO_TLSv1_1',
    ] as const) {
      const bit = constants[flag];
      expect(bit, flag).toBeGreaterThan(0);
      expect(SECURE_OPTIONS & bit, flag).toBe(bit);
    }
  });

  it('gives the context the client CA of the bundle (a watched file), else the PEM text loaded once', () => {
    const options = resolveHttpsOptions({ tls: { cert: 'c.pem', key: 'k.pem' } });
    const fromFile = Buffer.from('file CA');
    const fromText = Buffer.from('text CA');
    const bundle = { cert: Buffer.from('c'), key: Buffer.from('k') } as LoadedTlsBundle;
    expect(secureContextOptions(bundle, options).ca).toBeUndefined();
    expect(secureContextOptions(bundle, options, fromText).ca).toBe(fromText);
    expect(secureContextOptions({ ...bundle, ca: fromFile }, options).ca).toBe(fromFile);
  });
});
