/**
 * `npm start`: the whole secured sample stack on one machine.
 *
 * `npm start` checks the ports (scripts/ensure-built.mjs --stack-ports) before it builds; this
 * checks them again, as another process may have taken one meanwhile. Creates the dev PKI if missing, starts the dev OpenID provider, the stand-in hosted LLM and the
 * sample model server as child processes, waits until each answers over HTTPS (verified against
 * the dev CA), prints one banner, and stops everything on Ctrl-C. Keyless: no API key is created;
 * the sample exchanges its dev-PKI client certificate at the stand-in's token endpoint (OpenAI's
 * X.509 workload identity flow) for a short-lived token.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { initDevPki } from '@inference-shield/dev-pki';

interface Service {
  readonly name: string;
  readonly script: string;
  readonly port: number;
  readonly readyPath: string;
  readonly env: Record<string, string>;
  readonly clientCert?: boolean;
}

const root = resolve(new URL('../..', import.meta.url).pathname);

/** The file a package's bin runs, found through the package's own manifest (as npx would). */
function binOf(pkg: string, bin: string): string {
  const manifest = fileURLToPath(import.meta.resolve(`${pkg}/package.json`));
  const { bin: bins } = JSON.parse(readFileSync(manifest, 'utf8')) as { bin?: Record<string, string> };
  const file = bins?.[bin];
  if (file === undefined) throw new Error(`${pkg} has no bin ${bin}`);
  return resolve(dirname(manifest), file);
}
const pkiDir = resolve(root, process.env.SHIELD_PKI_DIR ?? '.shield/pki');

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    console.error(`${name} must be a port number from 1 to 65535, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

function assertPortFree(p: number, name: string): Promise<void> {
  return new Promise((ok, fail) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      fail(
        new Error(
          err.code === 'EADDRINUSE'
            ? `port ${p} (${name}) is already in use; stop what holds it or set another port (see README)`
            : `cannot listen on port ${p} (${name}): ${err.code ?? err.message}`,
        ),
      ),
    );
    srv.listen(p, '127.0.0.1', () => srv.close(() => ok()));
  });
}

async function waitReady(
  svc: Service,
  ca: string,
  client: { cert: string; key: string },
  child: ChildProcess,
) {
  const agent = new Agent({ connect: { ca, ...(svc.clientCert ? client : {}) } });
  const deadline = Date.now() + 60_000;
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null)
        throw new Error(`${svc.name} exited with code ${child.exitCode} during start-up`);
      try {
        const res = await request(`https://localhost:${svc.port}${svc.readyPath}`, {
          dispatcher: agent,
          headersTimeout: 2000,
          bodyTimeout: 2000,
        });
        await res.body.dump();
        if (res.statusCode < 500) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${svc.name} was not ready on port ${svc.port} within 60 s`);
  } finally {
    await agent.close();
  }
}

async function main(): Promise<void> {
  const ports = {
    idp: port('SHIELD_IDP_PORT', 9443),
    llm: port('SHIELD_LLM_PORT', 9444),
    model: port('SHIELD_MODEL_PORT', 8443),
  };
  const pki = await initDevPki({ dir: pkiDir, clients: ['demo', 'sample-model'] });
  const issuer = `https://localhost:${ports.idp}`;
  const shared = { SHIELD_PKI_DIR: pki.dir, NODE_EXTRA_CA_CERTS: '' };
  const services: Service[] = [
    {
      name: 'dev OpenID provider',
      script: binOf('@inference-shield/dev-idp', 'shield-idp'),
      port: ports.idp,
      readyPath: '/.well-known/openid-configuration',
      env: { SHIELD_IDP_PORT: String(ports.idp), SHIELD_IDP_AUDIENCE: `https://localhost:${ports.model}` },
    },
    {
      name: 'stand-in hosted LLM',
      script: binOf('@inference-shield/llm-standin', 'shield-llm-standin'),
      port: ports.llm,
      readyPath: '/v1/models',
      env: { SHIELD_LLM_PORT: String(ports.llm) },
      clientCert: true,
    },
    {
      name: 'sample model server',
      script: resolve(root, 'dist/sample-model/src/main.js'),
      port: ports.model,
      readyPath: '/v2/health/ready',
      env: {
        SHIELD_MODEL_PORT: String(ports.model),
        SHIELD_OIDC_ISSUER: issuer,
        SHIELD_LLM_URL: `https://localhost:${ports.llm}/v1`,
      },
    },
  ];
  for (const svc of services) await assertPortFree(svc.port, svc.name);

  const ca = readFileSync(pki.caCert, 'utf8');
  const client = {
    cert: readFileSync(pki.clientCert('demo'), 'utf8'),
    key: readFileSync(pki.clientKey('demo'), 'utf8'),
  };
  const children: ChildProcess[] = [];
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((r) => {
            if (c.exitCode !== null || c.signalCode !== null) return r();
            const t = setTimeout(() => (c.kill('SIGKILL'), r()), 5000);
            c.once('exit', () => (clearTimeout(t), r()));
          }),
      ),
    );
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  for (const svc of services) {
    const child = spawn(process.execPath, [svc.script], {
      cwd: root,
      env: { ...process.env, ...shared, ...svc.env },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(child);
    child.once('exit', (code, signal) => {
      if (!stopping) {
        console.error(
          `${svc.name} stopped unexpectedly (${signal ?? `exit code ${code}`}); stopping the stack`,
        );
        void stop(1);
      }
    });
    try {
      await waitReady(svc, ca, client, child);
    } catch (err) {
      console.error((err as Error).message);
      await stop(1);
    }
  }

  const line = '─'.repeat(78);
  process.stdout.write(`
${line}
 Inference Shield sample stack is up (HTTPS only; dev certificates, not for production)

   sample model server   https://localhost:${ports.model}   (KServe v2 + /v1/chat/completions)
   dev OpenID provider   ${issuer}
   stand-in hosted LLM   https://localhost:${ports.llm}   (mTLS required; no API key: the sample
                         exchanges its client certificate for a short-lived token)
   dev CA                ${pki.caCert}

 Try it:
   TOKEN=$(npm run -s token -- --scope "models:infer llm:chat")
   curl --cacert ${pki.caCert} -H "Authorization: Bearer $TOKEN" \\
     -H 'content-type: application/json' https://localhost:${ports.model}/v2/models/fraud-lr/infer \\
     -d '{"inputs":[{"name":"features","shape":[1,8],"datatype":"FP32","data":[180,21,90,0.4,40,4,0,0]}]}'

 Ctrl-C stops everything.
${line}
`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
