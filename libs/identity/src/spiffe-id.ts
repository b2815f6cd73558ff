import { parseSpiffeId } from '@inference-shield/core/internal';

/** True for a valid SPIFFE trust domain name (lowercase a-z, 0-9, `.`, `-`, `_`). */
export function isTrustDomain(value: string): boolean {
  return value.length <= 255 && parseSpiffeId(`spiffe://${value}`)?.path === '';
}

/**
 * The parts of a valid workload SPIFFE ID (SPIFFE-ID spec §2, with a non-empty path: a bare trust
 * domain ID names no workload, X509-SVID §3), or `undefined`. Allow-lists are checked with it at
 * start-up, so a typo such as `spiffe://Shield.local/x` fails the boot instead of never matching.
 */
export function parseWorkloadSpiffeId(value: string): { trustDomain: string; path: string } | undefined {
  const parsed = parseSpiffeId(value);
  return parsed && parsed.path !== '' ? parsed : undefined;
}
