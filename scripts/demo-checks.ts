/**
 * The behaviours `npm run demo` shows, as checks against a running sample stack. Used by the demo
 * (narrated) and by the end-to-end test of `npm start` (asserted). Real clients only: undici over
 * TLS verified against the dev CA, a raw TCP socket for the plaintext case, the OpenAI SDK for chat.
 */
import { execFile } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import { readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch, request } from 'undici';

export interface StackEndpoints {
  readonly modelUrl: string;
  readonly idpUrl: string;
  readonly pkiDir: string;
}

export interface DemoStep {
  readonly title: string;
  readonly ok: boolean;
  readonly detail: string;
}

// This file runs from scripts/ (tests) and from dist/scripts/ (npm run demo).
const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = basename(dirname(here)) === 'dist' ? resolve(here, '../..') : resolve(here, '..');
const run = promisify(execFile);

/**
 * A token the way the README and the banner get one: `npm run -s token`, told only the IdP's port
 * (SHIELD_IDP_PORT) and the PKI folder (SHIELD_PKI_DIR), exactly as after `npm start` on moved ports.
 */
async function tokenFromCli(stack: StackEndpoints, clientId: string, scope: string): Promise<string> {
  const { stdout } = await run('npm', ['run', '-s', 'token', '--', '--scope', scope, '--client', clientId], {
    cwd: repoRoot,
    env: {
      ...process.env,
      SHIELD_IDP_PORT: new URL(stack.idpUrl).port,
      SHIELD_PKI_DIR: stack.pkiDir,
      SHIELD_IDP_ISSUER: '',
    },
    timeout: 60_000,
  });
  return stdout.trim();
}

/** Run every check in order; never throws for a failed check (it is reported), only for a broken setup. */
export async function runDemoChecks(
  stack: StackEndpoints,
  log: (step: DemoStep) => void = () => {},
): Promise<{
  steps: DemoStep[];
  tokens: string[];
}> {
  const ca = readFileSync(join(stack.pkiDir, 'ca.pem'));
  const workload = {
    cert: readFileSync(join(stack.pkiDir, 'clients', 'demo.pem')),
    key: readFileSync(join(stack.pkiDir, 'clients', 'demo-key.pem')),
  };
  const tls = new Agent({ connect: { ca } });
  const mtls = new Agent({ connect: { ca, ...workload } });
  const steps: DemoStep[] = [];
  const tokens: string[] = [];
  const step = (title: string, ok: boolean, detail: string): void => {
    const s = { title, ok, detail };
    steps.push(s);
    log(s);
  };
  const infer = `${stack.modelUrl}/v2/models/fraud-lr/infer`;
  const body = JSON.stringify({
    inputs: [{ name: 'features', shape: [1, 8], datatype: 'FP32', data: [180, 21, 90, 0.4, 40, 4, 0, 0] }],
  });
  const post = async (agent: Agent, authorization?: string) => {
    const res = await request(infer, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
      body,
    });
    return {
      status: res.statusCode,
      headers: res.headers,
      json: (await res.body.json()) as Record<string, unknown>,
    };
  };

  try {
    const token = (clientId: string, scope: string) => tokenFromCli(stack, clientId, scope);

    const full = await token('demo-service', 'models:infer llm:chat');
    tokens.push(full);
    step(
      'get an access token from the dev IdP (npm run -s token, client_credentials)',
      /^[\w-]+\.[\w-]+\.[\w-]+$/.test(full),
      `a JWT of ${full.length} characters`,
    );

    const ok = await post(tls, `Bearer ${full}`);
    const outputs = ok.json.outputs as { data: number[] }[] | undefined;
    const score = outputs?.[0]?.data[0];
    step(
      'infer over HTTPS with the token',
      ok.status === 200 && typeof score === 'number',
      `${ok.status}, fraud_probability ${score?.toFixed(4)}`,
    );

    const plain = await plaintextRequest(new URL(stack.modelUrl));
    step(
      'the same call in plain HTTP to the HTTPS port is refused',
      plain.startsWith('HTTP/1.1 400'),
      plain.split('\r\n')[0] ?? '',
    );

    const none = await post(tls);
    step(
      'no token',
      none.status === 401 && none.json.code === 'ERR_TOKEN_MISSING',
      `${none.status} ${String(none.json.code)}`,
    );

    const reader = await token('reader', 'models:read');
    tokens.push(reader);
    const forbidden = await post(tls, `Bearer ${reader}`);
    step(
      'a token without the models:infer scope',
      forbidden.status === 403 && forbidden.json.code === 'ERR_INSUFFICIENT_SCOPE',
      `${forbidden.status} ${String(forbidden.json.code)}; ${String(forbidden.headers['www-authenticate'])}`,
    );

    const [h, p, s] = full.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: 'models:infer llm:chat admin' })).toString('base64url')}.${s}`;
    tokens.push(tampered);
    const bad = await post(tls, `Bearer ${tampered}`);
    step(
      'a tampered token (scope added after signing)',
      bad.status === 401,
      `${bad.status} ${String(bad.json.code)}`,
    );

    const wl = await post(mtls);
    step(
      'a workload with its client certificate and no token',
      wl.status === 200,
      `${wl.status} as spiffe://shield.local/demo`,
    );

    const openai = new OpenAI({
      baseURL: `${stack.modelUrl}/v1`,
      apiKey: full,
      fetch: ((url: string, init?: RequestInit) =>
        undiciFetch(url, { ...(init as object), dispatcher: tls } as Parameters<
          typeof undiciFetch
        >[1])) as never,
      maxRetries: 0,
    });
    const stream = await openai.chat.completions.create({
      model: 'standin-chat',
      messages: [{ role: 'user', content: 'Summarise why in-process mTLS matters.' }],
      stream: true,
    });
    let chunks = 0;
    let text = '';
    for await (const chunk of stream) {
      chunks += 1;
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    step(
      'a streamed chat completion relayed from the stand-in LLM over mTLS',
      chunks > 2 && text.length > 0,
      `${chunks} chunks, ${text.length} characters`,
    );
  } finally {
    await Promise.all([tls.close(), mtls.close()]);
  }
  return { steps, tokens };
}

/** Send an HTTP/1.1 request in plaintext to the TLS port and return what came back. */
function plaintextRequest(url: URL): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: url.hostname, port: Number(url.port) });
    let data = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer to the plaintext request')));
    socket.on('connect', () => socket.write(`GET /v2/health/ready HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`));
    socket.on('data', (d) => (data += d.toString('latin1')));
    socket.on('end', () => resolve(data));
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
  });
}
