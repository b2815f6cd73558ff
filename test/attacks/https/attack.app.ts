import { Controller, Get, Module, Query, Req } from '@nestjs/common';
import { peerCertificateOf, peerX509CertificateOf } from '@inference-shield/https';
import { spiffeIdOf, subjectAltNames } from '@inference-shield/core';

/** Counts handler runs, so a test can prove that a refused request never reached one. */
export const attackCalls = { count: 0 };

/** What the route saw of the caller's verified certificate, through both peer accessors. */
export interface AttackPeerAnswer {
  verified: boolean;
  /** SPIFFE ID from `getPeerCertificate()` (the `subjectaltname` string form). */
  spiffeFromPeer?: string;
  /** SPIFFE ID from `getPeerX509Certificate()`. */
  spiffeFromX509?: string;
  uris?: readonly string[];
  dns?: readonly string[];
}

@Controller()
class AttackController {
  @Get('hello')
  hello(): { ok: true } {
    attackCalls.count += 1;
    return { ok: true };
  }

  @Get('slow')
  async slow(@Query('ms') ms = '0'): Promise<{ waited: number }> {
    attackCalls.count += 1;
    // Bounded whatever the query says.
    const waited = Math.min(Math.max(Number(ms) || 0, 0), 5000);
    await new Promise((resolve) => setTimeout(resolve, waited));
    return { waited };
  }

  @Get('peer')
  peer(@Req() req: object): AttackPeerAnswer {
    const cert = peerCertificateOf(req);
    const x509 = peerX509CertificateOf(req);
    if (cert === undefined || x509 === undefined) return { verified: false };
    const sans = subjectAltNames(x509);
    return {
      verified: true,
      spiffeFromPeer: spiffeIdOf(cert),
      spiffeFromX509: spiffeIdOf(x509),
      uris: sans.uri,
      dns: sans.dns,
    };
  }
}

/** A GET, a route that takes as long as asked (bounded), and a peer-certificate report. */
@Module({ controllers: [AttackController] })
export class AttackAppModule {}
