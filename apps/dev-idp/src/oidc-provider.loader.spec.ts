import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadOidcProvider } from './oidc-provider.loader.js';

// Each test file runs in its own worker, so oidc-provider is evaluated here for the first time.
describe('loadOidcProvider', () => {
  afterEach(() => vi.restoreAllMocks());

  it.runIf(process.versions.node.startsWith('20.'))(
    'drops only oidc-provider\'s "Unsupported runtime" line on Node 20.19+, and puts console.warn back',
    async () => {
      const seen: string[] = [];
      const spy = vi.spyOn(console, 'warn').mockImplementation((...args: unknown[]) => {
        seen.push(args.map(String).join(' '));
      });
      const pending = loadOidcProvider();
      // Another warning while the module loads still gets through.
      console.warn('some other warning');
      const mod = await pending;
      expect(typeof mod.Provider).toBe('function');
      expect(seen).toEqual(['some other warning']);
      expect(console.warn).toBe(spy);
      // Loaded once: a second call returns the same module.
      expect(await loadOidcProvider()).toBe(mod);
    },
  );
});
