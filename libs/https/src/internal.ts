/**
 * `@inference-shield/https/internal`: the seam other Inference Shield packages use to hook the
 * requests of a server `createHttpsApp` built (identity's request shaping and early refusal).
 * Hooks run after the connection gate, TLS and the request gate, and before the framework, in the
 * order they are added. It loads no adapter package.
 *
 * Not a public API: names here may change in any release. Applications import
 * `@inference-shield/https`.
 */
export {
  requestHooksOf,
  type HttpsRequestHook,
  type HttpsRequestHookRegistry,
  type HttpsRequestNext,
} from './request-hooks.js';
