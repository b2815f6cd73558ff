import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemoChecks } from '../../scripts/demo-checks.js';

// The README's first command, for real: `npm start` as a child process on free ports with a fresh
// PKI, driven by real clients (undici over verified TLS, a raw socket and curl for plaintext, the
// OpenAI SDK for chat), then stopped like Ctrl-C, and no process may be left behind.

const run = promisify(execFile);

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

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start: the whole secured stack', () => {
  let child: ChildProcess;
  let output = '';
  let dir: string;
  const ports = { idp: 0, llm: 0, model: 0 };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shield-stack-'));
    ports.idp = await freePort();
    ports.llm = await freePort();
    ports.model = await freePort();
    child = spawn('npm', ['start'], {
      cwd: new URL('../..', import.meta.url).pathname,
      env: {
        ...process.env,
        SHIELD_PKI_DIR: join(dir, 'pki'),
        SHIELD_IDP_KEYS_FILE: join(dir, 'idp', 'jwks.json'),
        SHIELD_IDP_PORT: String(ports.idp),
        SHIELD_LLM_PORT: String(ports.llm),
        SHIELD_MODEL_PORT: String(ports.model),
      },
      // Its own process group, so the test can stop it the way a terminal's Ctrl-C does.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (output.includes('sample stack is up')) {
          clearInterval(timer);
          resolve();
        }
      }, 200);
      child.once('exit', (code) => {
        clearInterval(timer);
        reject(new Error(`npm start exited (${code}) before the stack was up:\n${output}`));
      });
    });
  }, 240_000);

  afterAll(async () => {
    if (child.pid !== undefined && groupAlive(child.pid)) process.kill(-child.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints one banner with the URLs, the CA and a curl that calls the model', () => {
    expect(output).toContain(`https://localhost:${ports.model}`);
    expect(output).toContain(join(dir, 'pki', 'ca.pem'));
    expect(output).toMatch(/TOKEN=\$\(npm run -s token -- --scope "models:infer llm:chat"\)/);
    expect(output).toContain('/v2/models/fraud-lr/infer');
  });

  it('is keyless: no API key file anywhere in the stack folder', () => {
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' });
    expect(files.filter((f) => /api-key|secret/i.test(f))).toEqual([]);
    expect(existsSync(join(dir, 'pki', 'llm-api-key'))).toBe(false);
  });

  it('does every behaviour of the demo', async () => {
    const { steps } = await runDemoChecks({
      modelUrl: `https://localhost:${ports.model}`,
      idpUrl: `https://localhost:${ports.idp}`,
      pkiDir: join(dir, 'pki'),
    });
    expect(steps.filter((s) => !s.ok)).toEqual([]);
    expect(steps.length).toBeGreaterThanOrEqual(8);
  }, 60_000);

  it('refuses plain HTTP from curl with a 400 that says to use HTTPS', async () => {
    const { stdout } = await run('curl', [
      '-s',
      '-i',
      '--max-time',
      '10',
      `http://localhost:${ports.model}/v2/health/ready`,
    ]);
    expect(stdout).toMatch(/^HTTP\/1\.1 400/);
    expect(stdout).toContain('ERR_HTTP_TO_HTTPS');
  });

  it('stops cleanly on Ctrl-C and leaves no process or port behind', async () => {
    const pid = child.pid as number;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    process.kill(-pid, 'SIGINT');
    await exited;
    for (let i = 0; i < 50 && groupAlive(pid); i++) await new Promise((r) => setTimeout(r, 200));
    expect(groupAlive(pid)).toBe(false);
    for (const port of Object.values(ports)) {
      await new Promise<void>((resolve, reject) => {
        const srv = net.createServer();
        srv.once('error', reject);
        srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()));
      });
    }
  }, 30_000);
});

describe('npm start with a port in use', () => {
  it('stops before building, naming the port', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shield-busy-'));
    // A stand-in `npm` first on the PATH records whether anything asked for a build; the outer
    // `npm start` is the real npm, by its absolute path.
    const realNpm = execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim();
    const marker = join(dir, 'built');
    writeFileSync(join(dir, 'npm'), `#!/bin/sh\ntouch ${JSON.stringify(marker)}\nexit 0\n`);
    chmodSync(join(dir, 'npm'), 0o755);
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const env = {
        ...process.env,
        PATH: `${dir}:${process.env.PATH ?? ''}`,
        SHIELD_MODEL_PORT: String(port),
        SHIELD_IDP_PORT: String(await freePort()),
        SHIELD_LLM_PORT: String(await freePort()),
      };
      const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
        const child = spawn(realNpm, ['start'], {
          cwd: new URL('../..', import.meta.url).pathname,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.on('data', (d: Buffer) => (output += d.toString()));
        child.stderr.on('data', (d: Buffer) => (output += d.toString()));
        child.once('exit', (code) => resolve({ code, output }));
      });
      expect(result.code).not.toBe(0);
      expect(existsSync(marker)).toBe(false);
      expect(result.output).toContain(`port ${port} (sample model server) is already in use`);
    } finally {
      busy.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
