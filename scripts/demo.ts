/**
 * `npm run demo`: a narrated walkthrough of the secured sample stack. Starts its own stack on free
 * ports (so it can read the audit log), checks each behaviour with real clients, shows the audit
 * lines those calls produced, proves no token is in any log line, stops the stack. Exits non-zero
 * if any check fails.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { resolve } from 'node:path';
import { runDemoChecks, type DemoStep } from './demo-checks.js';

const root = resolve(new URL('../..', import.meta.url).pathname);

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = net.createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => ok(port));
    });
  });
}

async function main(): Promise<void> {
  const [idp, llm, model] = [await freePort(), await freePort(), await freePort()];
  const pkiDir = resolve(root, process.env.SHIELD_PKI_DIR ?? '.shield/pki');
  console.log(`Starting the sample stack on ports ${model} (model), ${idp} (IdP), ${llm} (LLM)...`);
  const child = spawn(process.execPath, [resolve(root, 'dist/scripts/start.js')], {
    cwd: root,
    env: {
      ...process.env,
      SHIELD_IDP_PORT: String(idp),
      SHIELD_LLM_PORT: String(llm),
      SHIELD_MODEL_PORT: String(model),
      SHIELD_PKI_DIR: pkiDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const up = await Promise.race([
    new Promise<boolean>((r) => {
      const t = setInterval(() => {
        if (output.includes('sample stack is up')) {
          clearInterval(t);
          r(true);
        }
      }, 100);
      void exited.then(() => (clearInterval(t), r(false)));
    }),
    new Promise<boolean>((r) => setTimeout(() => r(false), 90_000).unref()),
  ]);
  if (!up) {
    console.error('The stack did not come up:\n' + output);
    child.kill('SIGINT');
    process.exit(1);
  }

  const show = (s: DemoStep): void => console.log(`  ${s.ok ? 'ok  ' : 'FAIL'}  ${s.title}: ${s.detail}`);
  console.log('\nWhat a caller sees:');
  let steps: DemoStep[] = [];
  let tokens: string[] = [];
  try {
    ({ steps, tokens } = await runDemoChecks(
      { modelUrl: `https://localhost:${model}`, idpUrl: `https://localhost:${idp}`, pkiDir },
      show,
    ));
  } catch (err) {
    steps.push({ title: 'the walkthrough ran to the end', ok: false, detail: (err as Error).message });
    show(steps[steps.length - 1] as DemoStep);
  }
  // Give the last audit lines a moment to be written before reading them.
  await new Promise((r) => setTimeout(r, 300));
  // The default audit sink writes JSON lines (schema "v":1) to stdout; the Logger sink tags them ShieldAudit.
  const audit = output.split('\n').filter((l) => l.startsWith('{"v":1,') || l.includes('ShieldAudit'));
  console.log(`\nThe audit lines those calls produced (${audit.length}):`);
  // Nest colours its console lines; strip the escape sequences for a readable excerpt.
  const ansi = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
  for (const line of audit.slice(-8)) console.log(`  ${line.replace(ansi, '').trim()}`);
  const leaked = tokens.some((t) => {
    const sig = t.split('.')[2] ?? t;
    return output.includes(t) || output.includes(sig.slice(0, 16));
  });
  const auditOk = audit.some((l) => l.includes('"allow"')) && audit.some((l) => l.includes('"deny"'));
  steps.push({
    title: 'audit lines for allow and deny decisions',
    ok: auditOk,
    detail: `${audit.length} lines`,
  });
  steps.push({
    title: 'no token (or piece of one) in any log line',
    ok: !leaked,
    detail: leaked ? 'LEAKED' : 'none found',
  });
  show(steps[steps.length - 2] as DemoStep);
  show(steps[steps.length - 1] as DemoStep);

  child.kill('SIGINT');
  await exited;
  const failed = steps.filter((s) => !s.ok).length;
  console.log(`\n${steps.length - failed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
