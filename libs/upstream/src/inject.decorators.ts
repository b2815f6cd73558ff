import { Inject } from '@nestjs/common';
import { UPSTREAM_REGISTRY, upstreamClientToken, upstreamProxyToken } from './upstream.constants.js';

/**
 * Injects the `UpstreamClient` of upstream `name`.
 *
 * @example constructor(@InjectUpstream('llm') private readonly llm: UpstreamClient) {}
 */
export const InjectUpstream = (name: string): PropertyDecorator & ParameterDecorator =>
  Inject(upstreamClientToken(name));

/** Injects the `UpstreamProxy` of upstream `name`, for a forwarding route. */
export const InjectUpstreamProxy = (name: string): PropertyDecorator & ParameterDecorator =>
  Inject(upstreamProxyToken(name));

/** Injects the `UpstreamRegistry` (every client, their stats, the caller-assertion JWKS). */
export const InjectUpstreamRegistry = (): PropertyDecorator & ParameterDecorator => Inject(UPSTREAM_REGISTRY);
