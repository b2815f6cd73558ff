// Cold start: a fresh Node process, from its first instruction to an HTTPS app listening.
//
//   npm run -s build && node bench/https/cold-start.mjs [cert.pem key.pem]
//   node bench/https/cold-start.mjs --plain     (the same app on plain HTTP, for comparison)
//
// Imports the compiled libs from dist/ (plain JS, so decorators are applied by hand), creates the
// HTTPS app and prints one JSON line: milliseconds since the process started (performance.now()
// counts from process start), split into Node's boot, imports (Nest dominates) and createHttpsApp.
// Without cert/key arguments a test PKI is generated first; its time is left out of the total.
import 'reflect-metadata';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const imported = performance.now();
const plain = process.argv[2] === '--plain';
const [{ Controller, Get, Module }, { NestFactory }, { createHttpsApp }] = await Promise.all([
  import('@nestjs/common'),
  import('@nestjs/core'),
  plain ? Promise.resolve({ createHttpsApp: undefined }) : import('@inference-shield/https'),
]);
const afterImports = performance.now();

let [cert, key] = process.argv.slice(2);
let pkiMs = 0;
if (!plain && (!cert || !key)) {
  const pkiStart = performance.now();
  const { createTestPki } = await import('@inference-shield/dev-pki');
  const pki = await createTestPki(mkdtempSync(join(tmpdir(), 'cold-start-')));
  cert = pki.server.cert;
  key = pki.server.key;
  pkiMs = performance.now() - pkiStart;
}

class HelloController {
  hello() {
    return { ok: true };
  }
}
Get('hello')(
  HelloController.prototype,
  'hello',
  Object.getOwnPropertyDescriptor(HelloController.prototype, 'hello'),
);
Controller()(HelloController);
class HelloModule {}
Module({ controllers: [HelloController] })(HelloModule);

const created = performance.now();
let port;
let close;
if (plain) {
  const app = await NestFactory.create(HelloModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  port = app.getHttpServer().address().port;
  close = () => app.close();
} else {
  const https = await createHttpsApp(HelloModule, { tls: { cert, key }, nest: { logger: false } });
  ({ port } = await https.listen(0, '127.0.0.1'));
  close = () => https.close();
}
const listening = performance.now();
console.log(
  JSON.stringify({
    processStartToListeningMs: Number((listening - pkiMs).toFixed(1)),
    nodeBootMs: Number(imported.toFixed(1)),
    importsMs: Number((afterImports - imported).toFixed(1)),
    mode: plain ? 'plain' : 'https',
    createToListeningMs: Number((listening - created).toFixed(1)),
    port,
  }),
);
await close();
