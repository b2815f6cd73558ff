import { statSync } from 'node:fs';
import { readBoundedFile, ShieldError } from '@inference-shield/core/internal';
import type { ResolvedSubjectTokenSource } from './credential-options.interface.js';

/** A subject token (a JWT) is a few KiB; refuse a huge or endless file. */
const MAX_SUBJECT_TOKEN_BYTES = 16 * 1024;
const TOKEN = /^[\x21-\x7e]{1,16384}$/;

/** Reads the subject (or actor) token of one exchange, from a file or a provider. */
export interface SubjectTokenReader {
  read(audience: string | undefined, signal: AbortSignal): Promise<string>;
}

/** A reader for `source`; `role` names it in errors ("subject token", "actor token"). */
export function subjectTokenReader(source: ResolvedSubjectTokenSource, role: string): SubjectTokenReader {
  return 'file' in source ? new FileTokenReader(source.file, role) : new ProviderTokenReader(source, role);
}

/**
 * A token file that rotates under us (a Kubernetes projected service-account token, a
 * spiffe-helper JWT-SVID file): read again whenever its size, mtime or inode changed, checked at
 * each exchange (exchanges are rare: once per token lifetime).
 */
class FileTokenReader implements SubjectTokenReader {
  private cached: { key: string; token: string } | undefined;

  constructor(
    private readonly file: string,
    private readonly role: string,
  ) {}

  read(): Promise<string> {
    try {
      const st = statSync(this.file);
      const key = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (this.cached?.key === key) return Promise.resolve(this.cached.token);
      const token = readBoundedFile(this.file, this.role, MAX_SUBJECT_TOKEN_BYTES).toString('utf8').trim();
      if (!TOKEN.test(token)) {
        throw new ShieldError('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE', {
          detail: `${this.role} file ${this.file} is empty or not one line of visible ASCII`,
        });
      }
      this.cached = { key, token };
      return Promise.resolve(token);
    } catch (err) {
      if (err instanceof ShieldError && err.code === 'ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE')
        return Promise.reject(err);
      // The file name and the reason, never the content.
      return Promise.reject(
        new ShieldError('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE', {
          cause: err,
          detail: `${this.role} file ${this.file} cannot be read`,
        }),
      );
    }
  }
}

/** A provider function, e.g. a SPIFFE Workload API source's `jwtSvid(audience)`. */
class ProviderTokenReader implements SubjectTokenReader {
  constructor(
    private readonly source: Extract<ResolvedSubjectTokenSource, { provider: unknown }>,
    private readonly role: string,
  ) {}

  async read(audience: string | undefined, signal: AbortSignal): Promise<string> {
    let result: unknown;
    try {
      result = await this.source.provider(audience, signal);
    } catch (err) {
      throw new ShieldError('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE', {
        cause: err,
        detail: `${this.role} provider failed`,
      });
    }
    const token = (result as { token?: unknown } | null | undefined)?.token;
    if (typeof token !== 'string' || !TOKEN.test(token)) {
      throw new ShieldError('ERR_UPSTREAM_CREDENTIAL_UNAVAILABLE', {
        detail: `${this.role} provider returned no usable token`,
      });
    }
    return token;
  }
}
