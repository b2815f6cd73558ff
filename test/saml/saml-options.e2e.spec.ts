import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Test } from '@nestjs/testing';
import { DevCertificateAuthority } from '@inference-shield/dev-pki';
import {
  resolveSamlOptions,
  SamlModule,
  SamlTokenSigner,
  type SamlModuleOptions,
} from '@inference-shield/saml/internal';
import { createSigningIdentity, type SigningIdentity } from './support/test-idp.js';

let dir: string;
let idpKeys: SigningIdentity;
let files: { idpCert: string; ecKey: string; rsaKey: string; garbage: string; huge: string; mangled: string };
let ecCertPem: string;
let weakCertPem: string;
let expiredCertPem: string;

function valid(): SamlModuleOptions {
  return {
    serviceProvider: { entityId: 'https://sp.example/saml', acsUrl: 'https://sp.example/saml/acs' },
    identityProviders: [
      {
        name: 'corp',
        entityId: 'https://idp.example',
        ssoUrl: 'https://idp.example/sso',
        signingCertificates: [idpKeys.certPem],
      },
    ],
    tokens: { issuer: 'https://sp.example', audience: 'inference', signingKey: 'ephemeral' },
  };
}

/** Applies `edit` to a fresh valid configuration (deep paths are edited in place). */
function withEdit(edit: (o: Record<string, unknown> & SamlModuleOptions) => void): unknown {
  const o = valid() as Record<string, unknown> & SamlModuleOptions;
  edit(o);
  return o;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shield-saml-options-'));
  const ca = await DevCertificateAuthority.create();
  const server = await ca.issueServer();
  const [keys, weak, expired] = await Promise.all([
    createSigningIdentity(),
    createSigningIdentity({ bits: 1024 }),
    createSigningIdentity({
      notBefore: new Date(Date.now() - 2 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    }),
  ]);
  idpKeys = keys;
  ecCertPem = server.certPem;
  weakCertPem = weak.certPem;
  expiredCertPem = expired.certPem;
  files = {
    idpCert: join(dir, 'idp.pem'),
    ecKey: join(dir, 'token-key.pem'),
    rsaKey: join(dir, 'rsa-key.pem'),
    garbage: join(dir, 'garbage.pem'),
    huge: join(dir, 'huge.pem'),
    mangled: join(dir, 'mangled.pem'),
  };
  await writeFile(files.mangled, idpKeys.certPem.replace(/^/gm, '\t'));
  await writeFile(files.idpCert, idpKeys.certPem);
  // The dev PKI's P-256 key is exactly what the token signer wants.
  await writeFile(files.ecKey, server.keyPem);
  await writeFile(
    files.rsaKey,
    generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
  );
  await writeFile(files.garbage, 'not a key');
  // A valid certificate followed by 1 MiB of padding: refused for its size, before any parsing.
  await writeFile(files.huge, idpKeys.certPem + ' '.repeat(1024 * 1024));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('resolveSamlOptions', () => {
  it('fills defaults and freezes the result', () => {
    const o = resolveSamlOptions(valid());
    expect(o.clockSkewMs).toBe(60_000);
    expect(o.maxMessageBytes).toBe(262_144);
    expect(o.tokens.ttlSeconds).toBe(300);
    expect(o.serviceProvider.audience).toBe('https://sp.example/saml');
    expect(o.identityProviders[0]).toMatchObject({
      requireSignedResponse: false,
      allowIdpInitiated: false,
      allowBearerGrant: false,
    });
    expect(Object.isFrozen(o)).toBe(true);
    expect(Object.isFrozen(o.identityProviders[0])).toBe(true);
  });

  it('accepts what core accepts: CRLF line ends, text around the blocks, several certificates (a rollover)', () => {
    const crlf = idpKeys.certPem.replace(/\n/g, '\r\n');
    const o = resolveSamlOptions(
      withEdit(
        (x) =>
          (x.identityProviders[0]!.signingCertificates = [
            `subject=CN=idp\n${crlf}`,
            `${idpKeys.certPem}${idpKeys.certPem}`,
          ]),
      ),
    );
    expect(o.identityProviders[0]?.signingCertificates).toHaveLength(3);
  });

  it('reads pinned certificates and the token key from files', async () => {
    const o = resolveSamlOptions(
      withEdit((x) => {
        x.identityProviders[0] = {
          ...x.identityProviders[0]!,
          signingCertificates: undefined,
          signingCertificateFiles: [files.idpCert],
        };
        x.tokens.signingKey = { privateKeyFile: files.ecKey };
      }),
    );
    expect(o.identityProviders[0]?.signingCertificatePems).toHaveLength(1);
    const signer = await SamlTokenSigner.create(o);
    expect(signer.jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256' });
  });

  it.each<[string, (o: Record<string, unknown> & SamlModuleOptions) => void, RegExp]>([
    ['an unknown option', (o) => (o['replayCahce'] = {}), /"saml" has an unknown option "replayCahce"/],
    [
      'an http: ACS URL',
      (o) => (o.serviceProvider.acsUrl = 'http://sp.example/acs'),
      /"serviceProvider.acsUrl" must be an https: URL/,
    ],
    [
      'an SP entity ID that is not a URI',
      (o) => (o.serviceProvider.entityId = 'my sp'),
      /"serviceProvider.entityId" must be an absolute URI/,
    ],
    [
      'no identity provider',
      (o) => (o.identityProviders = []),
      /"identityProviders" must be an array of 1 to 32/,
    ],
    [
      'an IdP without a certificate',
      (o) => (o.identityProviders[0] = { ...o.identityProviders[0]!, signingCertificates: [] }),
      /"identityProviders\[0\]" must pin at least one signing certificate/,
    ],
    [
      'an IdP certificate with an EC key (xml-crypto verifies RSA only)',
      (o) => (o.identityProviders[0]!.signingCertificates = [ecCertPem]),
      /"identityProviders\[0\].signingCertificates\[0\]" must hold an RSA key of at least 2048 bits/,
    ],
    [
      'an RSA-1024 IdP certificate',
      (o) => (o.identityProviders[0]!.signingCertificates = [weakCertPem]),
      /must hold an RSA key of at least 2048 bits/,
    ],
    [
      'an expired IdP certificate',
      (o) => (o.identityProviders[0]!.signingCertificates = [expiredCertPem]),
      /"identityProviders\[0\].signingCertificates\[0\]" expired on/,
    ],
    [
      'a missing certificate file',
      (o) => (o.identityProviders[0]!.signingCertificateFiles = [join(tmpdir(), 'no-such-idp.pem')]),
      /"identityProviders\[0\].signingCertificateFiles\[0\]" cannot be read \(ENOENT\)/,
    ],
    [
      'a certificate file that is a directory',
      (o) => (o.identityProviders[0]!.signingCertificateFiles = [dir]),
      /"identityProviders\[0\].signingCertificateFiles\[0\]" cannot be read: PEM file .* is not a regular file/,
    ],
    [
      'a certificate file over 1 MiB',
      (o) => (o.identityProviders[0]!.signingCertificateFiles = [files.huge]),
      /"identityProviders\[0\].signingCertificateFiles\[0\]" cannot be read: PEM file .* more than the 1048576 allowed/,
    ],
    [
      'a key file that is a directory',
      (o) => (o.tokens.signingKey = { privateKeyFile: dir }),
      /"tokens.signingKey.privateKeyFile" cannot be read: PEM file .* is not a regular file/,
    ],
    [
      'text that is no certificate',
      (o) => (o.identityProviders[0]!.signingCertificates = ['hello']),
      /holds no PEM certificate/,
    ],
    [
      'an indented certificate block (OpenSSL would still read it, unchecked)',
      (o) => (o.identityProviders[0]!.signingCertificates = [idpKeys.certPem.replace(/^/gm, '  ')]),
      /"identityProviders\[0\].signingCertificates\[0\]": certificate #1 is not a well-formed PEM block/,
    ],
    [
      'spaces inside the base64 of a block',
      (o) =>
        (o.identityProviders[0]!.signingCertificates = [idpKeys.certPem.replace(/\n(?=[A-Za-z0-9])/, '\n ')]),
      /"identityProviders\[0\].signingCertificates\[0\]": certificate #1 is not a well-formed PEM block/,
    ],
    [
      'a block without its END line',
      (o) =>
        (o.identityProviders[0]!.signingCertificates = [
          idpKeys.certPem.replace('-----END CERTIFICATE-----', ''),
        ]),
      /"identityProviders\[0\].signingCertificates\[0\]": certificate #1 is not a well-formed PEM block/,
    ],
    [
      'a valid certificate followed by a truncated one',
      (o) =>
        (o.identityProviders[0]!.signingCertificates = [idpKeys.certPem + idpKeys.certPem.slice(0, 120)]),
      /"identityProviders\[0\].signingCertificates\[0\]": certificate #2 is not a well-formed PEM block/,
    ],
    [
      'a TRUSTED CERTIFICATE block',
      (o) =>
        (o.identityProviders[0]!.signingCertificates = [
          idpKeys.certPem.replaceAll(' CERTIFICATE-----', ' TRUSTED CERTIFICATE-----'),
        ]),
      /block #1 is labelled "TRUSTED CERTIFICATE"; only -----BEGIN CERTIFICATE----- blocks are accepted/,
    ],
    [
      'a well-formed block that is no certificate',
      (o) =>
        (o.identityProviders[0]!.signingCertificates = [
          `-----BEGIN CERTIFICATE-----\n${Buffer.from('not DER at all').toString('base64')}\n-----END CERTIFICATE-----\n`,
        ]),
      /"identityProviders\[0\].signingCertificates\[0\]": certificate #1 cannot be parsed/,
    ],
    [
      'certificate text over 1 MiB',
      (o) => (o.identityProviders[0]!.signingCertificates = [idpKeys.certPem + ' '.repeat(1024 * 1024)]),
      /"identityProviders\[0\].signingCertificates\[0\]" is \d+ bytes, more than the 1048576 allowed/,
    ],
    [
      'a certificate file holding a mangled block',
      (o) => {
        o.identityProviders[0]!.signingCertificates = undefined;
        o.identityProviders[0]!.signingCertificateFiles = [files.mangled];
      },
      /"identityProviders\[0\].signingCertificateFiles\[0\]": certificate #1 is not a well-formed PEM block/,
    ],
    [
      'two IdPs with one entity ID',
      (o) => o.identityProviders.push({ ...o.identityProviders[0]!, name: 'again' }),
      /"identityProviders\[1\].entityId" repeats/,
    ],
    [
      'an IdP name with capitals',
      (o) => (o.identityProviders[0]!.name = 'Corp'),
      /"identityProviders\[0\].name" must be lowercase/,
    ],
    [
      'allowBearerGrant without a grant',
      (o) => (o.identityProviders[0]!.allowBearerGrant = true),
      /"grant" is required when an identity provider sets "allowBearerGrant"/,
    ],
    [
      'a flag that is not a boolean',
      (o) => ((o.identityProviders[0] as unknown as Record<string, unknown>)['allowIdpInitiated'] = 'yes'),
      /"identityProviders\[0\].allowIdpInitiated" must be a boolean/,
    ],
    [
      'a rule that grants nothing',
      (o) => (o.identityProviders[0]!.claims = { rules: [{ attribute: 'groups', equals: 'x' }] }),
      /"identityProviders\[0\].claims.rules\[0\]" grants nothing/,
    ],
    [
      'an invalid scope',
      (o) => (o.identityProviders[0]!.claims = { defaultScopes: ['a b'] }),
      /"identityProviders\[0\].claims.defaultScopes" holds an invalid scope/,
    ],
    [
      'an http: token issuer',
      (o) => (o.tokens.issuer = 'http://sp.example'),
      /"tokens.issuer" must be an https: URL/,
    ],
    [
      'a token lifetime over an hour',
      (o) => (o.tokens.ttlSeconds = 7200),
      /"tokens.ttlSeconds" must be an integer from 30 to 3600/,
    ],
    [
      'an RSA token key',
      (o) => (o.tokens.signingKey = { privateKeyFile: files.rsaKey }),
      /"tokens.signingKey.privateKeyFile" must hold a P-256 \(ES256\) private key/,
    ],
    [
      'a token key file that is no key',
      (o) => (o.tokens.signingKey = { privateKeyFile: files.garbage }),
      /"tokens.signingKey.privateKeyFile" does not hold a readable PEM private key/,
    ],
    [
      'a clock skew over 5 minutes',
      (o) => (o.clockSkewSeconds = 600),
      /"clockSkewSeconds" must be an integer from 0 to 300/,
    ],
    [
      'a message cap over 1 MiB',
      (o) => (o.maxMessageBytes = 2_000_000),
      /"maxMessageBytes" must be an integer from 4096/,
    ],
    [
      'a replay cache without consumeOnce',
      (o) => ((o as Record<string, unknown>)['replayCache'] = { has: () => false }),
      /"replayCache" must implement consumeOnce\(\)/,
    ],
    [
      'an http: grant token endpoint',
      (o) => (o.grant = { tokenEndpointUrl: 'http://sp.example/oauth/token' }),
      /"grant.tokenEndpointUrl" must be an https: URL/,
    ],
  ])('refuses %s, naming the field', (_name, edit, message) => {
    expect(() => resolveSamlOptions(withEdit(edit))).toThrow(TypeError);
    expect(() => resolveSamlOptions(withEdit(edit))).toThrow(message);
  });

  it('never quotes the key file content in its error', () => {
    try {
      resolveSamlOptions(withEdit((o) => (o.tokens.signingKey = { privateKeyFile: files.rsaKey })));
      expect.unreachable();
    } catch (err) {
      expect(String(err)).not.toContain('PRIVATE KEY');
    }
  });
});

describe('SamlModule start-up', () => {
  it('starts with valid options', async () => {
    const ref = await Test.createTestingModule({ imports: [SamlModule.forRoot(valid())] }).compile();
    expect(ref.get(SamlTokenSigner).jwks.keys).toHaveLength(1);
    await ref.close();
  });

  it('refuses to start with an invalid option (forRoot)', async () => {
    const bad = withEdit((o) => (o.serviceProvider.acsUrl = 'http://sp.example/acs')) as SamlModuleOptions;
    await expect(Test.createTestingModule({ imports: [SamlModule.forRoot(bad)] }).compile()).rejects.toThrow(
      /"serviceProvider.acsUrl" must be an https: URL/,
    );
  });

  it('refuses to start with an invalid option (forRootAsync)', async () => {
    await expect(
      Test.createTestingModule({
        imports: [
          SamlModule.forRootAsync({
            useFactory: async () => withEdit((o) => (o.tokens.ttlSeconds = 0)) as SamlModuleOptions,
          }),
        ],
      }).compile(),
    ).rejects.toThrow(/"tokens.ttlSeconds"/);
  });
});
