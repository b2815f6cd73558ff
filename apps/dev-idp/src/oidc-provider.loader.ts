/**
 * Loads oidc-provider once, for {@link startDevIdp}.
 *
 * oidc-provider prints `Unsupported runtime. Use Node.js v22.x LTS, or a later LTS release.` when it
 * is first loaded on any Node release older than 22 (a release-name check, not a feature check).
 * This package declares and tests Node 20.19+, so on Node 20.19+ that one line is dropped, and only
 * while the module loads: every other warning, and the same line on any other runtime (Bun, Deno,
 * an odd-numbered Node), still prints.
 */
type OidcProviderModule = typeof import('oidc-provider');

// The line, after the colour codes oidc-provider adds on a terminal (an ESC sequence before it).
const RUNTIME_NOTICE = new RegExp(
  `^(?:${String.fromCharCode(27)}\\[[0-9;]*m)?oidc-provider WARNING: Unsupported runtime\\. Use Node\\.js v22\\.x LTS`,
);

/** Node 20.19 or later 20.x: the oldest release this package supports and tests. */
function testedNode20(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major === 20 && minor >= 19;
}

let loading: Promise<OidcProviderModule> | undefined;

/** The oidc-provider module, without its runtime notice on Node 20.19+. */
export function loadOidcProvider(): Promise<OidcProviderModule> {
  loading ??= (async () => {
    if (!testedNode20()) return import('oidc-provider');
    const warn = console.warn;
    console.warn = (...args: unknown[]): void => {
      if (args.length === 1 && typeof args[0] === 'string' && RUNTIME_NOTICE.test(args[0])) return;
      warn.apply(console, args);
    };
    try {
      return await import('oidc-provider');
    } finally {
      console.warn = warn;
    }
  })();
  return loading;
}
