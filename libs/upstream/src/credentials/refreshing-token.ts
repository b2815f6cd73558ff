import { deadlineSignal, isShieldError, ShieldError } from '@inference-shield/core/internal';

/** A token as a token endpoint handed it out. */
export interface FetchedToken {
  readonly accessToken: string;
  /** Lifetime in seconds from now. */
  readonly expiresInSeconds: number;
}

/** Counters of one credential; plain integers, no token in them. */
export interface CredentialStats {
  /** Requests sent to the token endpoint. */
  tokenRequests: number;
  /** Tokens obtained. */
  tokensObtained: number;
  /** Token requests that failed (refused, unreachable, timed out, bad answer). */
  tokenFailures: number;
  /** Failed refreshes while the previous token was still in use. */
  refreshFailures: number;
}

/** Options of {@link RefreshingToken}. */
export interface RefreshingTokenOptions {
  /** Ask the token endpoint for a new token; bounded by `signal`. */
  readonly fetch: (signal: AbortSignal) => Promise<FetchedToken>;
  /** Longest token request. */
  readonly timeoutMs: number;
  /** Clock and randomness, replaceable in unit tests. */
  readonly now?: () => number;
  readonly random?: () => number;
  /** A refresh failed while the current token is still valid (it stays in use). */
  readonly onRefreshError?: (err: ShieldError) => void;
  /** Refresh ahead of expiry with a timer, even without requests; default `true`. */
  readonly background?: boolean;
}

interface Held {
  readonly value: string;
  /** Past this instant the token is not sent any more (a margin before its expiry). */
  readonly usableUntil: number;
  /** From this instant a new token is asked for, ahead of expiry. */
  refreshAt: number;
}

/** Refresh starts between 70 % and 80 % of a token's lifetime (jitter spreads replicas). */
const REFRESH_AT = 0.8;
const REFRESH_JITTER = 0.1;
/** A token is dropped 10 % of its lifetime (at most 30 s) before it expires: clocks and latency. */
const EXPIRY_MARGIN = 0.1;
const MAX_EXPIRY_MARGIN_MS = 30_000;
/** Backoff after a failed token request: 500 ms doubling up to 30 s, with jitter. */
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** A token endpoint answering with days of lifetime still gets asked again within a day. */
const MAX_LIFETIME_S = 24 * 3600;

/**
 * One cached access token: single-flight (concurrent callers share one token request), refreshed
 * ahead of expiry in the background, a failed refresh retried with backoff while the current token
 * is still valid. Without a valid token, a caller waits for one request (bounded by `timeoutMs`),
 * and during a backoff after a failure gets the failure at once: a down token endpoint is not
 * hammered by every inbound request.
 */
export class RefreshingToken {
  readonly stats: CredentialStats = {
    tokenRequests: 0,
    tokensObtained: 0,
    tokenFailures: 0,
    refreshFailures: 0,
  };
  private held: Held | undefined;
  private inflight: Promise<Held> | undefined;
  private failures = 0;
  private retryAt = 0;
  private lastError: ShieldError | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly closing = new AbortController();
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly options: RefreshingTokenOptions) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  /** The current token, or a new one; rejects with a `ShieldError` (or the caller's abort reason). */
  async get(signal?: AbortSignal): Promise<string> {
    signal?.throwIfAborted();
    const now = this.now();
    const held = this.held;
    if (held !== undefined && now < held.usableUntil) {
      if (now >= held.refreshAt && now >= this.retryAt) this.refreshInBackground();
      return held.value;
    }
    if (this.inflight === undefined && now < this.retryAt && this.lastError !== undefined) {
      throw new ShieldError(this.lastError.code, {
        cause: this.lastError.cause,
        detail: `${this.lastError.details.detail ?? 'token request failed'}; retrying after a backoff`,
      });
    }
    const next = await raceAbort(this.refresh(), signal);
    return next.value;
  }

  /**
   * Ask for a new token now, in the background, keeping the current one meanwhile: the client
   * certificate rotated, and a token bound to the old one (RFC 8705 `cnf`) should be replaced.
   */
  refreshSoon(): void {
    if (this.held === undefined || this.closing.signal.aborted) return;
    this.held.refreshAt = 0;
    this.retryAt = 0;
    this.schedule(0);
  }

  /** Stop the background refresh; a token request in flight is cancelled. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.closing.abort();
  }

  private refreshInBackground(): void {
    this.refresh().catch(() => undefined);
  }

  private refresh(): Promise<Held> {
    if (this.inflight !== undefined) return this.inflight;
    if (this.closing.signal.aborted) {
      return Promise.reject(
        new ShieldError('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE', { detail: 'client closed' }),
      );
    }
    const run = this.request().finally(() => {
      if (this.inflight === run) this.inflight = undefined;
    });
    this.inflight = run;
    return run;
  }

  private async request(): Promise<Held> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.stats.tokenRequests++;
    const deadline = deadlineSignal(this.options.timeoutMs, this.closing.signal);
    const signal = deadline.signal;
    let fetched: FetchedToken;
    try {
      fetched = await this.options.fetch(signal);
      if (
        typeof fetched.accessToken !== 'string' ||
        !/^[\x21-\x7e]{1,16384}$/.test(fetched.accessToken) ||
        !Number.isFinite(fetched.expiresInSeconds) ||
        fetched.expiresInSeconds <= 0
      ) {
        throw new ShieldError('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE', {
          detail: 'token endpoint answered without a usable access token or lifetime',
        });
      }
    } catch (err) {
      throw this.failed(toCredentialError(err, signal));
    } finally {
      deadline.clear();
    }
    const now = this.now();
    const lifetimeMs = Math.min(fetched.expiresInSeconds, MAX_LIFETIME_S) * 1000;
    const margin = Math.min(lifetimeMs * EXPIRY_MARGIN, MAX_EXPIRY_MARGIN_MS);
    const ratio = REFRESH_AT - REFRESH_JITTER * this.random();
    const held: Held = {
      value: fetched.accessToken,
      usableUntil: now + lifetimeMs - margin,
      refreshAt: now + lifetimeMs * ratio,
    };
    this.held = held;
    this.stats.tokensObtained++;
    this.failures = 0;
    this.retryAt = 0;
    this.lastError = undefined;
    this.schedule(held.refreshAt - now);
    return held;
  }

  private failed(err: ShieldError): ShieldError {
    this.stats.tokenFailures++;
    this.failures++;
    const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(this.failures - 1, 16));
    const now = this.now();
    this.retryAt = now + backoff * (0.5 + 0.5 * this.random());
    this.lastError = err;
    const held = this.held;
    if (held !== undefined && now < held.usableUntil) {
      // The current token is still good: keep it, try again after the backoff.
      this.stats.refreshFailures++;
      this.options.onRefreshError?.(err);
      if (this.retryAt < held.usableUntil) this.schedule(this.retryAt - now);
    }
    return err;
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    // On-behalf-of tokens refresh on demand only: a caller that is gone costs nothing.
    if (this.closing.signal.aborted || this.options.background === false) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.refreshInBackground();
      },
      Math.max(0, delayMs),
    );
    // Never keeps the process alive on its own.
    this.timer.unref();
  }
}

/** Our typed error for whatever a token request threw; `cause` kept for logs. */
function toCredentialError(err: unknown, signal: AbortSignal): ShieldError {
  if (isShieldError(err)) return err;
  const detail = signal.aborted ? 'token request timed out or was cancelled' : 'token request failed';
  return new ShieldError('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE', { cause: err, detail });
}

/** Settle with `promise`, or reject with the caller's abort reason first (the shared request goes on). */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
