// The public API of each @inference-shield package, as a reviewed report: for every entry its
// `exports` map names, every exported name with its declaration as the built .d.ts states it.
// A change to what users can import shows as a diff of libs/<name>/api/*.api.md.
//
//   node scripts/api-report.mjs           write the reports (after `npm run build`)
//   node scripts/api-report.mjs --check   exit 1 if a report is out of date (CI)
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

const root = new URL('..', import.meta.url).pathname;
const check = process.argv.includes('--check');
const packageDirs = ['libs', 'apps']
  .flatMap((group) => readdirSync(join(root, group)).map((name) => join(root, group, name)))
  .filter((dir) => existsSync(join(dir, 'package.json')));

/** The declaration of one export as the .d.ts states it, without its doc comment. */
function declarationText(decl) {
  const sf = decl.getSourceFile();
  let node = decl;
  // `export declare const A: X, B: Y` → the statement; a variable alone is not readable.
  if (ts.isVariableDeclaration(node)) node = node.parent.parent;
  const text = sf.text.slice(node.getStart(sf, false), node.end).trim();
  return text.replace(/^export (declare )?/, '').replace(/^declare /, '');
}

let stale = 0;
for (const dir of packageDirs) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  if (pkg.private || pkg.exports === undefined) continue;
  const entries = Object.entries(pkg.exports)
    .filter(([sub, target]) => sub !== './package.json' && typeof target === 'object')
    .map(([sub, target]) => [sub, join(dir, target.import?.types ?? target.types)]);
  const program = ts.createProgram(
    entries.map(([, file]) => file),
    {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      noEmit: true,
      skipLibCheck: true,
    },
  );
  const checker = program.getTypeChecker();
  for (const [sub, file] of entries) {
    const sf = program.getSourceFile(file);
    if (sf === undefined) throw new Error(`${pkg.name}: ${file} is missing; run npm run build first`);
    const moduleSymbol = checker.getSymbolAtLocation(sf);
    const exports = moduleSymbol ? checker.getExportsOfModule(moduleSymbol) : [];
    const name = sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`;
    const lines = [
      `# API report: \`${name}\``,
      '',
      `<!-- Written by scripts/api-report.mjs from the built declarations. Do not edit: a change here is a change to what users can import. -->`,
      '',
      `${exports.length} exported names.`,
      '',
    ];
    for (const sym of [...exports].sort((a, b) => a.name.localeCompare(b.name))) {
      const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
      const decls = target.declarations ?? [];
      lines.push(`## ${sym.name}`, '', '```ts');
      for (const decl of decls) lines.push(declarationText(decl));
      lines.push('```', '');
    }
    const out = join(dir, 'api', `${sub === '.' ? 'index' : sub.slice(2).replaceAll('/', '-')}.api.md`);
    const text = lines.join('\n');
    const current = existsSync(out) ? readFileSync(out, 'utf8') : undefined;
    if (current === text) continue;
    if (check) {
      console.error(`${out} is out of date: run npm run build && node scripts/api-report.mjs`);
      stale++;
    } else {
      mkdirSync(join(dir, 'api'), { recursive: true });
      writeFileSync(out, text);
      console.log(`wrote ${out} (${exports.length} names)`);
    }
  }
}
process.exit(stale > 0 ? 1 : 0);
