/** An OpenAI-shaped error answer: status, `error.message`, `error.type`, `error.code`, `error.param`. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null,
    readonly param: string | null = null,
    /** Extra response headers (e.g. `retry-after` on a 429). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}
