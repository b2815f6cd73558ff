/**
 * Options of {@link startDevIdp}, parsed once into a frozen object. A bad field is a `TypeError`
 * naming it; an unknown key is refused (a typo such as `prot: 0` must not start the IdP on 9443).
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  assertInteger,
  assertKnownKeys,
  assertString,
  deepFreeze,
  parseHttpsUrl,
} from '@inference-shield/core/internal';
import { DEFAULT_KEYS_FILE } from './signing-keys.js';

/** Options of {@link startDevIdp}. Every path is resolved against the working directory. */
export interface DevIdpOptions {
  /** TCP port; `0` picks a free one (tests). Default 9443. */
  port?: number;
  /** Address to listen on. Default `127.0.0.1`: the dev IdP is never exposed beyond the machine by default. */
  host?: string;
  /** Dev PKI folder (`ca.pem`, `localhost.pem`, `localhost-key.pem`); created when missing. Default `.shield/pki`. */
  pkiDir?: string;
  /** Private JWKS file; created when missing. Default `.shield/idp/jwks.json`. */
  keysFile?: string;
  /** Clients file (format: the package README). Default: the package's own `clients.json`, the sample stack's clients. */
  clientsFile?: string;
  /** Issuer identifier (`iss`), an https origin. Default `https://localhost:<port>`. */
  issuer?: string;
  /**
   * Replaces the identifier of the clients file's default resource (keeping its scopes), e.g. the
   * `https://localhost:<port>` of a model server a test started on port 0.
   */
  audience?: string;
}

/** The resolved options. */
export interface ResolvedDevIdpOptions {
  readonly port: number;
  readonly host: string;
  readonly pkiDir: string;
  readonly keysFile: string;
  readonly clientsFile: string;
  readonly issuer?: string;
  readonly audience?: string;
}

const KEYS = ['port', 'host', 'pkiDir', 'keysFile', 'clientsFile', 'issuer', 'audience'] as const;

/** Default IdP port (`https://localhost:9443`). */
export const DEFAULT_DEV_IDP_PORT = 9443;

/**
 * The folder of this compiled module, in either build: the CommonJS build has `__dirname` and no
 * `import.meta` (TypeScript refuses it there), the ESM build the reverse. The ESM case reads the
 * module's own file from V8's structured call sites, which name it exactly (a `file:` URL).
 */
function moduleDir(): string {
  if (typeof __dirname === 'string') return __dirname;
  const prepare = Error.prepareStackTrace;
  try {
    Error.prepareStackTrace = (_err, sites) => sites;
    const sites = new Error().stack as unknown as readonly NodeJS.CallSite[] | undefined;
    const file = sites?.[0]?.getFileName();
    if (file === undefined || file === null) return process.cwd();
    return dirname(file.startsWith('file:') ? fileURLToPath(file) : file);
  } finally {
    Error.prepareStackTrace = prepare;
  }
}

/**
 * The clients file shipped with the package (`clients.json` at its root: the sample stack's
 * clients). The module runs from `src/` (tests), `dist/esm/` and `dist/cjs/` (the package and its
 * bins), and `tsc` does not copy JSON, so both depths are tried.
 */
export function defaultClientsFile(): string {
  const here = moduleDir();
  const fromSrc = resolve(here, '../clients.json');
  const fromDist = resolve(here, '../../clients.json');
  return existsSync(fromSrc) ? fromSrc : fromDist;
}

/** Validate and resolve {@link DevIdpOptions}. */
export function resolveDevIdpOptions(raw: DevIdpOptions = {}): ResolvedDevIdpOptions {
  assertKnownKeys('devIdp', raw, KEYS);
  const port = raw.port ?? DEFAULT_DEV_IDP_PORT;
  assertInteger('devIdp.port', port, 0, 65_535);
  const host = raw.host ?? '127.0.0.1';
  assertString('devIdp.host', host);
  const pkiDir = raw.pkiDir ?? '.shield/pki';
  assertString('devIdp.pkiDir', pkiDir);
  const keysFile = raw.keysFile ?? DEFAULT_KEYS_FILE;
  assertString('devIdp.keysFile', keysFile);
  const clientsFile = raw.clientsFile ?? defaultClientsFile();
  assertString('devIdp.clientsFile', clientsFile);

  const resolved: { -readonly [K in keyof ResolvedDevIdpOptions]: ResolvedDevIdpOptions[K] } = {
    port,
    host,
    pkiDir: resolve(pkiDir),
    keysFile: resolve(keysFile),
    clientsFile: resolve(clientsFile),
  };
  if (raw.issuer !== undefined) {
    const url = parseHttpsUrl('devIdp.issuer', raw.issuer);
    // The provider is mounted at the root of the server, so the issuer is an origin (no path, and
    // OpenID Connect Discovery 1.0 section 3 forbids a query or fragment anyway).
    if (url.pathname !== '/' || url.search) {
      throw new TypeError(
        `"devIdp.issuer" must be an origin such as https://localhost:9443, got ${JSON.stringify(raw.issuer)}`,
      );
    }
    resolved.issuer = url.origin;
  }
  const { audience } = raw;
  if (audience !== undefined) {
    assertString('devIdp.audience', audience);
    parseHttpsUrl('devIdp.audience', audience);
    resolved.audience = audience;
  }
  return deepFreeze(resolved);
}
