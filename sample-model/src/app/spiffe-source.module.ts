import { Inject, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { WorkloadApiSource } from '@inference-shield/spiffe';

/** Injection token of the sample's {@link WorkloadApiSource}. */
export const WORKLOAD_API_SOURCE = Symbol.for('sample-model:workload-api-source');

/**
 * The workload's SPIFFE identity from the local Workload API agent (SPIRE or any conforming one):
 * its X.509-SVID (the client certificate towards the LLM) and JWT-SVIDs (the subject token of the
 * LLM token exchange). Connected during start-up: an agent that never answers stops the app.
 */
@Module({})
export class SampleSpiffeModule implements OnApplicationShutdown {
  constructor(@Inject(WORKLOAD_API_SOURCE) private readonly source: WorkloadApiSource) {}

  static forAddress(address: string): DynamicModule {
    return {
      module: SampleSpiffeModule,
      providers: [{ provide: WORKLOAD_API_SOURCE, useFactory: () => WorkloadApiSource.connect({ address }) }],
      exports: [WORKLOAD_API_SOURCE],
    };
  }

  onApplicationShutdown(): void {
    this.source.close();
  }
}
