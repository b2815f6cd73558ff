import { relative } from 'node:path';
import { DEFAULT_PKI_DIR, initDevPki } from './dev-pki.init.js';

/** Where the CLI writes; injectable so the CLI is tested in-process. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Base for the relative paths printed; default the current directory. */
  cwd?: string;
}

const USAGE = `Usage: npm run pki -- init [--dir <dir>] [--client <name> ...] [--trust-domain <domain>]

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
`;

interface InitArgs {
  dir?: string;
  clients: string[];
  trustDomain?: string;
}

type Parsed = { kind: 'help' } | { kind: 'init'; args: InitArgs } | { kind: 'error'; message: string };

function parse(argv: readonly string[]): Parsed {
  if (argv.some((a) => a === '--help' || a === '-h')) return { kind: 'help' };
  const [command, ...rest] = argv;
  if (command === undefined) return { kind: 'error', message: 'missing command' };
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
  const { dir, clients, trustDomain } = parsed.args;
  try {
    const result = await initDevPki({
      ...(dir !== undefined ? { dir } : {}),
      ...(clients.length > 0 ? { clients } : {}),
      ...(trustDomain !== undefined ? { trustDomain } : {}),
    });
    const base = io.cwd ?? process.cwd();
    const show = (p: string): string => {
      const r = relative(base, p);
      return r.startsWith('..') ? p : r;
    };
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
