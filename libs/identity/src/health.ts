/**
 * `@inference-shield/identity/health`: a health indicator for `@nestjs/terminus` (an optional
 * peer, loaded only by this entry): the state of each OIDC issuer's key set.
 *
 * @packageDocumentation
 */
import { Injectable, Optional } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { InjectTokenVerifier } from './inject.decorators.js';
import type { KeySetState } from './tokens/issuer-key-set.js';
import type { TokenVerifier } from './tokens/token-verifier.js';

/** What {@link IdentityHealthIndicator.keySets} reports for one issuer. */
export interface IssuerKeySetHealth {
  readonly state: KeySetState;
  /** Usable keys held now. */
  readonly keys: number;
  /** ISO time of the last successful fetch (inline keys: when they were loaded). */
  readonly lastFetchOk?: string;
  /** Why the last fetch failed, for operators (never a response body, never a key). */
  readonly lastError?: string;
}

/** Pure: up when every issuer's keys are `ok`; down when one is `unloaded` or `stale`. */
export function keySetHealth(
  states: Readonly<Record<string, KeySetState>>,
  stats: Readonly<Record<string, { keys: number; lastFetchOk?: number; lastError?: string }>>,
): { up: boolean; issuers: Record<string, IssuerKeySetHealth> } {
  const issuers: Record<string, IssuerKeySetHealth> = {};
  let up = true;
  for (const [issuer, state] of Object.entries(states)) {
    const s = stats[issuer];
    if (state !== 'ok') up = false;
    issuers[issuer] = {
      state,
      keys: s?.keys ?? 0,
      ...(s?.lastFetchOk !== undefined ? { lastFetchOk: new Date(s.lastFetchOk).toISOString() } : {}),
      ...(s?.lastError !== undefined ? { lastError: s.lastError } : {}),
    };
  }
  return { up, issuers };
}

/**
 * Terminus indicator of `IdentityModule`'s token verifier. Provide it beside `TerminusModule` in a
 * module of an app that imports `IdentityModule`.
 *
 * @example
 * ready() { return this.health.check([() => this.identity.keySets()]); }
 */
@Injectable()
export class IdentityHealthIndicator {
  constructor(
    private readonly indicators: HealthIndicatorService,
    @Optional() @InjectTokenVerifier() private readonly verifier: TokenVerifier | null = null,
  ) {}

  /**
   * Down while an issuer's keys are not loaded yet or are past `maxKeyStalenessMs` (its tokens are
   * refused then, `ERR_KEYSET_UNAVAILABLE`); up otherwise, and up with `oidc: false` without OIDC.
   * Details per issuer: state, key count, last successful fetch, last error.
   */
  keySets<const Key extends string = 'identity'>(key: Key = 'identity' as Key): HealthIndicatorResult<Key> {
    const session = this.indicators.check(key);
    if (this.verifier === null) return session.up({ oidc: false });
    const { up, issuers } = keySetHealth(this.verifier.keySetStates(), this.verifier.stats().issuers);
    return up ? session.up({ issuers }) : session.down({ issuers });
  }
}

export type { KeySetState } from './tokens/issuer-key-set.js';
