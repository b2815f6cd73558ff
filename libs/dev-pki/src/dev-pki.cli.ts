import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DEFAULT_PKI_DIR, initDevPki } from './dev-pki.init.js';
import { createTestPki } from './test-pki.js';

/** Where the CLI writes; injectable so the CLI is tested in-process. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Base for the relative paths printed; default the current directory. */
  cwd?: string;
}

/** Where `test-pki` writes by default: beside the dev PKI, never into it. */
const DEFAULT_TEST_PKI_DIR = '.shield/test-pki';

const USAGE = `Usage: npm run pki -- init [--dir <dir>] [--client <name> ...] [--trust-domain <domain>]
       npm run pki -- test-pki [--dir <dir>]
       (installed: npx shield-pki init ..., npx shield-pki test-pki ...)

Create or refresh the development PKI (never for production):
  <dir>/ca.pem, ca-key.pem          the dev CA (ECDSA P-256, 10 years)
  <dir>/localhost.pem, -key.pem     server certificate for localhost, 127.0.0.1, ::1
  <dir>/clients/<name>.pem, -key.pem  client certificate, SPIFFE ID spiffe://<domain>/<name>
  <dir>/ca.crl.pem                  the CA's CRL

Options:
  --dir <dir>              default ${DEFAULT_PKI_DIR}
  --client <name>          repeatable; default demo
  --trust-domain <domain>  default shield.local
  -h, --help               this text

Valid material is kept; missing, invalid or soon-expiring material is re-created.

test-pki: good and bad material for tests, all new on every run (never for a running service):
  a CA and its CRL, a valid server and client, and expired, not-yet-valid, wrong-EKU, revoked,
  other-CA, mismatched-key, wrong-host and odd-SPIFFE-ID certificates (createTestPki in code).
  --dir <dir>              default ${DEFAULT_TEST_PKI_DIR}
`;

interface InitArgs {
  dir?: string;
  clients: string[];
  trustDomain?: string;
}

type Parsed =
  | { kind: 'help' }
  | { kind: 'init'; args: InitArgs }
  | { kind: 'test-pki'; dir: string }
  | { kind: 'error'; message: string };

function parseTestPki(rest: readonly string[]): Parsed {
  let dir = DEFAULT_TEST_PKI_DIR;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? '';
    const value = arg.startsWith('--dir=')
      ? arg.slice('--dir='.length)
      : arg === '--dir'
        ? rest[++i]
        : undefined;
    if (arg !== '--dir' && !arg.startsWith('--dir=')) {
      return { kind: 'error', message: `unknown argument ${JSON.stringify(arg)}` };
    }
    if (value === undefined || value === '' || value.startsWith('--')) {
      return { kind: 'error', message: '--dir needs a value' };
    }
    dir = value;
  }
  return { kind: 'test-pki', dir };
}

function parse(argv: readonly string[]): Parsed {
  if (argv.some((a) => a === '--help' || a === '-h')) return { kind: 'help' };
  const [command, ...rest] = argv;
  if (command === undefined) return { kind: 'error', message: 'missing command' };
  if (command === 'test-pki') return parseTestPki(rest);
  if (command !== 'init') return { kind: 'error', message: `unknown command ${JSON.stringify(command)}` };
  const args: InitArgs = { clients: [] };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? '';
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq !== -1 ? arg.slice(0, eq) : arg;
    let value: string | undefined;
    if (name !== arg) value = arg.slice(eq + 1);
    else if (['--dir', '--client', '--trust-domain'].includes(arg)) value = rest[++i];
    switch (name) {
      case '--dir':
      case '--client':
      case '--trust-domain':
        if (value === undefined || value === '' || value.startsWith('--')) {
          return { kind: 'error', message: `${name} needs a value` };
        }
        if (name === '--dir') args.dir = value;
        else if (name === '--client') args.clients.push(value);
        else args.trustDomain = value;
        break;
      default:
        return { kind: 'error', message: `unknown argument ${JSON.stringify(arg)}` };
    }
  }
  return { kind: 'init', args };
}

/**
 * The `pki` command line: `init [--dir d] [--client name ...] [--trust-domain td]`. Prints the paths
 * it created, replaced or kept (never key material). Returns the exit code: 0 done, 1 failed,
 * 2 bad usage.
 */
export async function runDevPkiCli(argv: readonly string[], io: CliIo): Promise<number> {
  const parsed = parse(argv);
  if (parsed.kind === 'help') {
    io.out(USAGE);
    return 0;
  }
  if (parsed.kind === 'error') {
    io.err(`pki: ${parsed.message}\n\n${USAGE}`);
    return 2;
  }
  const base = io.cwd ?? process.cwd();
  const show = (p: string): string => {
    const r = relative(base, p);
    return r.startsWith('..') ? p : r;
  };
  if (parsed.kind === 'test-pki') return writeTestPki(parsed.dir, io, show);
  const { dir, clients, trustDomain } = parsed.args;
  try {
    const result = await initDevPki({
      ...(dir !== undefined ? { dir } : {}),
      ...(clients.length > 0 ? { clients } : {}),
      ...(trustDomain !== undefined ? { trustDomain } : {}),
    });
    io.out(`dev PKI in ${show(result.dir)} (trust domain ${result.trustDomain})\n`);
    for (const entry of result.report) {
      const reason = entry.reason !== undefined ? ` (${entry.reason})` : '';
      io.out(`  ${entry.status.padEnd(8)} ${show(entry.path)}${reason}\n`);
    }
    for (const [name, id] of Object.entries(result.clients)) io.out(`  client ${name}: ${id}\n`);
    return 0;
  } catch (err) {
    // Our own errors name the option or file; nothing here can hold key material.
    io.err(`pki: ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof TypeError ? 2 : 1;
  }
}

/** Every certificate of a test PKI, by its name in {@link createTestPki}'s result (`expired.server`). */
function certificatesOf(node: object, prefix = ''): [name: string, cert: string][] {
  const found: [string, string][] = [];
  for (const [key, value] of Object.entries(node)) {
    if (value === null || typeof value !== 'object' || key === 'authority') continue;
    const name = prefix === '' ? key : `${prefix}.${key}`;
    const cert = (value as { cert?: unknown }).cert;
    if (typeof cert === 'string') found.push([name, cert]);
    else found.push(...certificatesOf(value as object, name));
  }
  return found;
}

async function writeTestPki(dir: string, io: CliIo, show: (p: string) => string): Promise<number> {
  // Its CA is written as ca.pem too: never over a dev PKI that services trust.
  if (existsSync(join(dir, 'localhost.pem'))) {
    io.err(`pki: ${dir} holds a dev PKI (localhost.pem); give test-pki a folder of its own\n`);
    return 2;
  }
  try {
    const pki = await createTestPki(dir);
    io.out(
      `test PKI in ${show(pki.dir)} (test material only; keys beside each certificate as <name>-key.pem)\n`,
    );
    for (const [name, cert] of certificatesOf(pki)) io.out(`  ${name.padEnd(28)} ${show(cert)}\n`);
    return 0;
  } catch (err) {
    io.err(`pki: ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof TypeError ? 2 : 1;
  }
}
