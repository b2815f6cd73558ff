import { Inject } from '@nestjs/common';
import { AUDIT_SINK, IDENTITY_OPTIONS, TOKEN_VERIFIER } from './identity.constants.js';

/** Injects the module's `TokenVerifier` (`null` without `oidc`), e.g. to verify a token outside HTTP. */
export const InjectTokenVerifier = (): PropertyDecorator & ParameterDecorator => Inject(TOKEN_VERIFIER);

/** Injects the resolved, frozen `IdentityModule` options. */
export const InjectIdentityOptions = (): PropertyDecorator & ParameterDecorator => Inject(IDENTITY_OPTIONS);

/** Injects the module's {@link AuditSink}, e.g. to record decisions made outside the guard. */
export const InjectAuditSink = (): PropertyDecorator & ParameterDecorator => Inject(AUDIT_SINK);
