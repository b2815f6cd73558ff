import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { WORKLOAD_PROTO_DESCRIPTOR } from './workload.proto-descriptor.js';
import { workloadApiService } from './workload-api.client.js';

const proto = fileURLToPath(new URL('../proto/workload.proto', import.meta.url));

describe('the embedded Workload API descriptor', () => {
  it('is the vendored workload.proto, field for field (regenerate with scripts/proto-descriptor.mjs)', async () => {
    // @ts-expect-error: a plain .mjs script without declarations
    const { descriptorOf } = (await import('../scripts/proto-descriptor.mjs')) as {
      descriptorOf(path: string): unknown;
    };
    expect(WORKLOAD_PROTO_DESCRIPTOR).toEqual(JSON.parse(JSON.stringify(descriptorOf(proto))));
  });

  it('ships the proto with its licence and notice', () => {
    const dir = new URL('../proto/', import.meta.url);
    expect(readFileSync(new URL('LICENSE', dir), 'utf8')).toContain('Apache License');
    expect(readFileSync(new URL('NOTICE', dir), 'utf8')).toContain('proto/spiffe/workload/workload.proto');
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      files: string[];
    };
    expect(pkg.files).toContain('proto');
  });

  it('defines the five methods this client and the test agent use', () => {
    const service = workloadApiService().service as Record<string, { path: string }>;
    expect(Object.values(service).map((m) => m.path)).toEqual(
      expect.arrayContaining([
        '/SpiffeWorkloadAPI/FetchX509SVID',
        '/SpiffeWorkloadAPI/FetchX509Bundles',
        '/SpiffeWorkloadAPI/FetchJWTSVID',
        '/SpiffeWorkloadAPI/FetchJWTBundles',
        '/SpiffeWorkloadAPI/ValidateJWTSVID',
      ]),
    );
  });
});
