/**
 * Attack (fail-open configuration): `@AllowSpiffe('spiffe://shield.local/')`.
 *
 * `@AllowSpiffe` sorts its arguments with `/^spiffe:\/\/([^/]+)\/?$/`: a match is taken as a whole
 * trust domain. The optional `\/?` makes `spiffe://shield.local/` (a workload ID whose path is
 * missing, e.g. built as `spiffe://shield.local/${process.env.GATEWAY_PATH ?? ''}` with the
 * variable unset) allow EVERY workload of the trust domain. That string is not a valid SPIFFE ID
 * (SPIFFE-ID §2.2: no trailing slash), and the same string in `@Allow(mtls({ spiffeIds }))` is
 * refused at start-up; the README promises "malformed SPIFFE IDs" are refused at start-up. Here the
 * app starts, and any workload of the trust domain reaches the route.
 *
 * Expected: the app refuses to start (the route's policy is invalid), so no workload gets in.
 * Real HTTPS on loopback, dev PKI client certificates.
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Controller, Get, Module, type Type } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type IssuedCertificate, type TestPki } from '@inference-shield/dev-pki';
import { Allow, AllowSpiffe, IdentityModule, mtls } from '@inference-shield/identity';
import { startApp } from '../../support/harness.js';
import { callOnce, serveOptionalMtls } from './attack-kit.js';

/** Meant as `spiffe://shield.local/ns/prod/gateway`, with the workload path lost. */
const TRUNCATED = 'spiffe://shield.local/';

let handlerCalls = 0;

@Controller()
class LoadController {
  @Get('load')
  @AllowSpiffe(TRUNCATED)
  load(): { loaded: true } {
    handlerCalls++;
    return { loaded: true };
  }
}

@Controller()
class ExplicitController {
  @Get('load')
  @Allow(mtls({ spiffeIds: [TRUNCATED] }))
  load(): { loaded: true } {
    handlerCalls++;
    return { loaded: true };
  }
}

function appWith(controller: Type): Type {
  @Module({
    imports: [IdentityModule.forRoot({ mtls: { trustDomains: ['shield.local'] } })],
    controllers: [controller],
  })
  class TrailingSlashApp {}
  return TrailingSlashApp;
}

const dir = mkdtempSync(join(tmpdir(), 'attack-spiffe-slash-'));
let pki: TestPki;
let intruder: IssuedCertificate;

beforeAll(async () => {
  pki = await createTestPki(dir);
  intruder = await pki.ca.authority.issueClient({ spiffeId: 'spiffe://shield.local/ns/dev/anything' });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts the app, or returns the error message when it refuses to start. */
async function tryStart(controller: Type): Promise<{ port: number; close(): Promise<void> } | string> {
  try {
    return await startApp(appWith(controller), serveOptionalMtls(pki));
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

describe('a SPIFFE ID with its path missing ("spiffe://shield.local/")', () => {
  it('control: the same ID in @Allow(mtls({ spiffeIds })) stops the app at start-up', async () => {
    const started = await tryStart(ExplicitController);
    if (typeof started !== 'string') await started.close();
    expect(typeof started).toBe('string');
    expect(started).toContain('is not a SPIFFE ID');
  });

  it('in @AllowSpiffe() stops the app at start-up too, instead of allowing the whole trust domain', async () => {
    const started = await tryStart(LoadController);
    if (typeof started !== 'string') await started.close();
    expect(typeof started === 'string' ? started : 'the app started').toContain('LoadController.load');
  });

  it('never lets an arbitrary workload of the trust domain reach the handler', async () => {
    handlerCalls = 0;
    const started = await tryStart(LoadController);
    if (typeof started === 'string') return; // refused at start-up: nobody gets in
    try {
      const r = await callOnce(started.port, pki, '/load', { client: intruder });
      expect(r.status).toBe(403);
      expect(handlerCalls).toBe(0);
    } finally {
      await started.close();
    }
  });
});
