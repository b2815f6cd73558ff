// The servers of the HTTPS benchmark, in their own process (so the benchmark can pin them to one
// core and read their CPU time from /proc). Started by https-bootstrap.bench.ts; not a CLI.
//
//   node bench/https/bench-servers.mjs <cert.pem> <key.pem>
//
// Plain JS importing the compiled libs from dist/ (`npm run build`); decorators applied by hand.
// Starts, in this one process, the same Nest module three ways, all Express, all on loopback:
//   plain     NestFactory.create, plain HTTP (Express defaults: ETag and X-Powered-By on)
//   plainSame plain HTTP with the Express settings the bootstrap applies (ETag and X-Powered-By off)
//   nestHttps NestFactory.create with httpsOptions: same certificate and TLS policy, no bootstrap gates
//   https     createHttpsApp (the bootstrap)
// Prints one JSON line {"pid", "ports": {...}, "startupToListeningMs"} and runs until stdin closes.
import 'reflect-metadata';
import { Body, Controller, HttpCode, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';

const { createHttpsApp, TLS12_CIPHERS, TLS13_CIPHERS, ECDH_CURVES } = await import('@inference-shield/https');
const [cert, key] = process.argv.slice(2);
if (!cert || !key) throw new Error('usage: bench-servers.mjs <cert.pem> <key.pem>');

class InferController {
  infer(body) {
    // 1 KiB out: the request echoed (what a model server's "inputs/outputs" answer weighs).
    return body;
  }
}
const infer = Object.getOwnPropertyDescriptor(InferController.prototype, 'infer');
Post('infer')(InferController.prototype, 'infer', infer);
HttpCode(200)(InferController.prototype, 'infer', infer);
Body()(InferController.prototype, 'infer', 0);
Controller('v2/models/demo')(InferController);
class InferModule {}
Module({ controllers: [InferController] })(InferModule);

const { readFileSync } = await import('node:fs');
const plain = await NestFactory.create(InferModule, { logger: false });
await plain.listen(0, '127.0.0.1');
const plainSame = await NestFactory.create(InferModule, { logger: false });
plainSame.disable('x-powered-by');
plainSame.disable('etag');
await plainSame.listen(0, '127.0.0.1');
const nestHttps = await NestFactory.create(InferModule, {
  logger: false,
  httpsOptions: {
    cert: readFileSync(cert),
    key: readFileSync(key),
    minVersion: 'TLSv1.2',
    ciphers: [...TLS13_CIPHERS, ...TLS12_CIPHERS].join(':'),
    ecdhCurve: ECDH_CURVES,
    honorCipherOrder: true,
  },
});
await nestHttps.listen(0, '127.0.0.1');
const started = performance.now();
const https = await createHttpsApp(InferModule, { tls: { cert, key }, nest: { logger: false } });
const { port: httpsPort } = await https.listen(0, '127.0.0.1');
const startupToListeningMs = Number((performance.now() - started).toFixed(1));

console.log(
  JSON.stringify({
    pid: process.pid,
    ports: {
      plain: plain.getHttpServer().address().port,
      plainSame: plainSame.getHttpServer().address().port,
      nestHttps: nestHttps.getHttpServer().address().port,
      https: httpsPort,
    },
    startupToListeningMs,
  }),
);

// Stop when the benchmark closes our stdin (or dies): never outlive it.
process.stdin.resume();
process.stdin.on('end', async () => {
  await Promise.allSettled([https.close(), nestHttps.close(), plain.close(), plainSame.close()]);
  process.exit(0);
});
