import 'reflect-metadata';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Module, type INestApplication, type LoggerService } from '@nestjs/common';
import { HttpAdapterHost, NestFactory } from '@nestjs/core';
import { ShieldExceptionFilter } from '@inference-shield/core';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelRegistry } from './model-registry.service.js';
import { SampleModelModule } from './sample-model.module.js';
import type { SampleModelModuleOptions } from './sample-model-options.interface.js';

interface Fixtures {
  feature_names: string[];
  tolerance: number;
  cases: { features: number[]; expected: number }[];
}

const modelsDir = fileURLToPath(new URL('../../models/', import.meta.url));
const committedModel = join(modelsDir, 'fraud-lr', 'model.onnx');
const fixtures = (await import('../../models/fraud-lr/fixtures.json', { with: { type: 'json' } }))
  .default as Fixtures;

/** Keeps every log line, so a test can prove that features and scores never reach a log. */
class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];
  private keep(...parts: unknown[]): void {
    this.lines.push(parts.map((p) => (p instanceof Error ? `${p.message} ${p.stack}` : String(p))).join(' '));
  }
  log(...p: unknown[]): void {
    this.keep(...p);
  }
  error(...p: unknown[]): void {
    this.keep(...p);
  }
  warn(...p: unknown[]): void {
    this.keep(...p);
  }
  debug(...p: unknown[]): void {
    this.keep(...p);
  }
  verbose(...p: unknown[]): void {
    this.keep(...p);
  }
}

async function createApp(options: SampleModelModuleOptions, logger: LoggerService | false = false) {
  @Module({ imports: [SampleModelModule.forRoot(options)] })
  class AppModule {}
  // abortOnError false: a refused start must reject here, not exit the test process.
  const app = await NestFactory.create(AppModule, { logger, abortOnError: false });
  app.useGlobalFilters(new ShieldExceptionFilter(app.get(HttpAdapterHost)));
  return app;
}

async function listen(app: INestApplication): Promise<string> {
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

async function call(
  base: string,
  path: string,
  init: { method?: string; json?: unknown; body?: string; contentType?: string } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  let body: string | undefined;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    headers['content-type'] = 'application/json';
  } else if (init.body !== undefined) {
    body = init.body;
    headers['content-type'] = init.contentType ?? 'application/json';
  }
  const res = await fetch(base + path, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const features = (rows: readonly (readonly number[])[]) => ({
  name: 'features',
  datatype: 'FP32',
  shape: [rows.length, fixtures.feature_names.length],
  data: rows.flat(),
});

describe('Open Inference Protocol routes on a real Nest app', () => {
  const logger = new CapturingLogger();
  let app: INestApplication;
  let base: string;

  beforeAll(async () => {
    app = await createApp({ modelsDir }, logger);
    base = await listen(app);
  });
  afterAll(async () => {
    await app.close();
  });

  it('GET /v2/health/live → 200 { live: true }', async () => {
    expect(await call(base, '/v2/health/live')).toEqual({ status: 200, body: { live: true } });
  });

  it('GET /v2/health/ready → 200 { ready: true }', async () => {
    expect(await call(base, '/v2/health/ready')).toEqual({ status: 200, body: { ready: true } });
  });

  it('GET /v2/models/fraud-lr → v2 metadata with -1 for the dynamic batch', async () => {
    expect(await call(base, '/v2/models/fraud-lr')).toEqual({
      status: 200,
      body: {
        name: 'fraud-lr',
        versions: ['1'],
        platform: 'onnxruntime',
        inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 8] }],
        outputs: [{ name: 'fraud_probability', datatype: 'FP32', shape: [-1, 1] }],
      },
    });
  });

  it('GET /v2/models/fraud-lr/ready → 200', async () => {
    expect(await call(base, '/v2/models/fraud-lr/ready')).toEqual({
      status: 200,
      body: { name: 'fraud-lr', ready: true },
    });
  });

  it('POST /v2/models/fraud-lr/infer scores the fixture rows like the training script', async () => {
    const res = await call(base, '/v2/models/fraud-lr/infer', {
      json: { id: 'batch-1', inputs: [features(fixtures.cases.map((c) => c.features))] },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ model_name: 'fraud-lr', model_version: '1', id: 'batch-1' });
    const outputs = res.body.outputs as { name: string; datatype: string; shape: number[]; data: number[] }[];
    expect(outputs).toHaveLength(1);
    expect(outputs[0]).toMatchObject({
      name: 'fraud_probability',
      datatype: 'FP32',
      shape: [fixtures.cases.length, 1],
    });
    fixtures.cases.forEach((c, i) => {
      expect(Math.abs((outputs[0]?.data[i] ?? Number.NaN) - c.expected)).toBeLessThanOrEqual(
        fixtures.tolerance,
      );
    });
  });

  it('accepts nested rows and a named output, and omits id when none was sent', async () => {
    const rows = fixtures.cases.slice(0, 2).map((c) => c.features);
    const res = await call(base, '/v2/models/fraud-lr/infer', {
      json: {
        inputs: [{ ...features(rows), data: rows }],
        outputs: [{ name: 'fraud_probability' }],
      },
    });
    expect(res.status).toBe(200);
    expect('id' in res.body).toBe(false);
    const data = (res.body.outputs as { data: number[] }[])[0]?.data ?? [];
    expect(data).toHaveLength(2);
    expect(Math.abs((data[1] ?? Number.NaN) - (fixtures.cases[1]?.expected ?? 0))).toBeLessThanOrEqual(
      fixtures.tolerance,
    );
  });

  it.each([
    ['GET', '/v2/models/no-such-model'],
    ['GET', '/v2/models/no-such-model/ready'],
    ['POST', '/v2/models/no-such-model/infer'],
    ['GET', '/v2/models/__proto__'],
    ['GET', '/v2/models/constructor/ready'],
  ])('%s %s → 404 ERR_MODEL_NOT_FOUND', async (method, path) => {
    const res = await call(base, path, method === 'POST' ? { json: { inputs: [features([[1]])] } } : {});
    expect(res).toEqual({ status: 404, body: { code: 'ERR_MODEL_NOT_FOUND', message: 'No such model.' } });
  });

  const SENTINEL = 98765.4321;
  const oneRow = [SENTINEL, 3, 20, 0.7, 150, 5, 0, 1];
  it.each<[string, unknown]>([
    ['a wrong input name', { inputs: [{ ...features([oneRow]), name: 'input_0' }] }],
    ['a wrong datatype', { inputs: [{ ...features([oneRow]), datatype: 'FP64' }] }],
    ['7 features instead of 8', { inputs: [{ ...features([oneRow.slice(1)]), shape: [1, 7] }] }],
    ['shape and data disagreeing', { inputs: [{ ...features([oneRow]), shape: [2, 8] }] }],
    ['a string among the features', { inputs: [features([[...oneRow.slice(1), 'x' as unknown as number]])] }],
    ['1025 rows (over the default 1024)', { inputs: [features(new Array(1025).fill(oneRow))] }],
    ['an unknown field', { inputs: [features([oneRow])], priority: 'high' }],
    ['no inputs', { id: 'x' }],
  ])('POST infer with %s → 400 ERR_INVALID_INPUT, nothing echoed', async (_name, body) => {
    const res = await call(base, '/v2/models/fraud-lr/infer', { json: body });
    expect(res).toEqual({
      status: 400,
      body: {
        code: 'ERR_INVALID_INPUT',
        message: 'The inference input is invalid.',
        detail: expect.any(String),
      },
    });
    // The detail names the field, never the value that was sent.
    for (const value of sentStrings(body)) expect(res.body.detail).not.toContain(value);
  });

  // Issue #13: these reached the validator (400 ERR_INVALID_INPUT); a form was even parsed for it.
  it.each<[string, string | undefined, string]>([
    ['text/plain', 'text/plain', '{"inputs":[]}'],
    ['multipart/form-data', 'multipart/form-data; boundary=x', '--x\r\n\r\n--x--\r\n'],
    ['no content type', undefined, '{"inputs":[]}'],
    ['application/vnd.api+json', 'application/vnd.api+json', '{"inputs":[]}'],
    ['a URL-encoded form', 'application/x-www-form-urlencoded', 'inputs=1'],
  ])('POST infer with %s → 415 ERR_UNSUPPORTED_MEDIA_TYPE', async (_name, contentType, body) => {
    const headers: Record<string, string> = contentType === undefined ? {} : { 'content-type': contentType };
    // Bytes, not a string: fetch would add text/plain to a string body.
    const res = await fetch(`${base}/v2/models/fraud-lr/infer`, {
      method: 'POST',
      headers,
      body: new TextEncoder().encode(body),
    });
    expect(res.status).toBe(415);
    expect(await res.json()).toEqual({
      code: 'ERR_UNSUPPORTED_MEDIA_TYPE',
      message: 'Unsupported content type.',
    });
  });

  it("POST infer with malformed JSON → 400 from Nest's own parser handling", async () => {
    const res = await call(base, '/v2/models/fraud-lr/infer', { body: '{"inputs": [' });
    expect(res).toEqual({
      status: 400,
      body: { statusCode: 400, error: 'Bad Request', message: 'Unexpected end of JSON input' },
    });
  });

  it('never logs features or scores', async () => {
    await call(base, '/v2/models/fraud-lr/infer', { json: { inputs: [features([oneRow])] } });
    // The capture works (Nest's start-up lines are in it), so an absence below means something.
    expect(logger.lines.some((l) => l.includes('/v2/models/:name/infer'))).toBe(true);
    const logs = logger.lines.join('\n');
    expect(logs).not.toContain(String(SENTINEL));
    for (const c of fixtures.cases) expect(logs).not.toContain(String(c.expected));
  });
});

describe('readiness during shutdown', () => {
  let app: INestApplication;
  let base: string;
  beforeAll(async () => {
    app = await createApp({ modelsDir });
    base = await listen(app);
  });
  afterAll(async () => {
    await app.close();
  });

  it('turns health, model readiness and inference to 503 once shutdown begins; liveness stays', async () => {
    app.get(ModelRegistry).beforeApplicationShutdown();
    expect(await call(base, '/v2/health/ready')).toEqual({
      status: 503,
      body: { code: 'ERR_NOT_READY', message: 'The service is not ready.' },
    });
    expect((await call(base, '/v2/models/fraud-lr/ready')).body.code).toBe('ERR_MODEL_NOT_READY');
    const infer = await call(base, '/v2/models/fraud-lr/infer', { json: { inputs: [features([[1]])] } });
    expect(infer.status).toBe(503);
    expect((await call(base, '/v2/health/live')).status).toBe(200);
  });
});

/** A valid ONNX graph whose input is int64: loads in onnxruntime, but this server cannot validate it. */
function int64IdentityModel(): Uint8Array {
  const { onnx } = onnxProto;
  const info = (name: string) => ({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.INT64, shape: { dim: [{ dimParam: 'N' }] } } },
  });
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'ids',
        input: [info('ids')],
        output: [info('same')],
        node: [{ opType: 'Identity', input: ['ids'], output: ['same'] }],
      },
    }),
  ).finish();
}

describe('the app refuses to start', () => {
  const root = mkdtempSync(join(tmpdir(), 'shield-sample-model-'));
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
  });

  /** A models folder holding the given sub-folders, each with the given files. */
  function modelsFolder(name: string, models: Record<string, Record<string, Uint8Array | string>>): string {
    const dir = join(root, name);
    mkdirSync(dir);
    for (const [model, files] of Object.entries(models)) {
      mkdirSync(join(dir, model));
      for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, model, file), content);
    }
    return dir;
  }

  it.each<[string, unknown, RegExp]>([
    ['an unknown option', { modelDir: '/tmp' }, /unknown option "modelDir"/],
    ['maxBatchRows of 0', { modelsDir, maxBatchRows: 0 }, /"maxBatchRows" must be an integer/],
    ['maxBatchRows as a string', { modelsDir, maxBatchRows: '1024' }, /"maxBatchRows"/],
    ['maxElementsPerInput too large', { modelsDir, maxElementsPerInput: 2 ** 30 }, /"maxElementsPerInput"/],
    [
      'a models folder that does not exist',
      { modelsDir: join(root, 'nowhere') },
      /"modelsDir" must be an existing folder/,
    ],
    ['modelsDir empty', { modelsDir: '' }, /"modelsDir"/],
  ])('with %s (TypeError naming the field)', async (_name, options, message) => {
    await expect(createApp(options as SampleModelModuleOptions)).rejects.toThrow(message);
  });

  it.each<[string, () => string, RegExp]>([
    ['an empty models folder', () => modelsFolder('empty', {}), /no model folder/],
    [
      'a model folder without model.onnx',
      () => modelsFolder('no-file', { 'fraud-lr': { 'model.onx': 'x' } }),
      /is missing/,
    ],
    [
      'a corrupt model.onnx',
      () => modelsFolder('corrupt', { broken: { 'model.onnx': 'this is not protobuf' } }),
      /"broken".*failed to load/,
    ],
    [
      'a model name that is not URL-safe',
      () => {
        const dir = modelsFolder('bad-name', {});
        mkdirSync(join(dir, 'fraud lr'));
        copyFileSync(committedModel, join(dir, 'fraud lr', 'model.onnx'));
        return dir;
      },
      /not a valid model name/,
    ],
    [
      'a model with an int64 input',
      () => modelsFolder('int64', { ids: { 'model.onnx': int64IdentityModel() } }),
      /only float32/,
    ],
    [
      'one good and one broken model (no partial start)',
      () => {
        const dir = modelsFolder('mixed', { zz: { 'model.onnx': 'junk' } });
        mkdirSync(join(dir, 'fraud-lr'));
        copyFileSync(committedModel, join(dir, 'fraud-lr', 'model.onnx'));
        return dir;
      },
      /"zz".*failed to load/,
    ],
  ])('with %s (app.init rejects)', async (_name, makeDir, message) => {
    const app = await createApp({ modelsDir: makeDir() });
    try {
      await expect(app.init()).rejects.toThrow(message);
    } finally {
      await app.close().catch(() => undefined);
    }
  });
});

/** Every string and long number in a request body: what a detail must never quote back. */
function sentStrings(body: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string' && v.length >= 3 && !['FP32', 'features'].includes(v)) out.push(v);
    else if (typeof v === 'number' && String(v).length >= 5) out.push(String(v));
    else if (Array.isArray(v)) v.slice(0, 50).forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(body);
  return out;
}
