import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { ShieldError } from '@inference-shield/core';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { validateInferRequest } from './infer-request.validation.js';
import type { ResolvedSampleModelOptions } from './sample-model-options.interface.js';
import { MODEL_FILE, MODEL_VERSION, SAMPLE_MODEL_OPTIONS } from './sample-model.constants.js';
import type {
  V2InferResponse,
  V2ModelMetadata,
  V2OutputTensor,
  V2TensorMetadata,
} from './v2-protocol.interface.js';

/** A model folder name is its URL segment: keep it boring so it never needs escaping. */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * The sessions run one small graph per request: one intra-op thread avoids thread-pool wake-ups
 * that cost more than the arithmetic, and leaves the other cores to the HTTP and TLS work.
 * Warnings only: onnxruntime's verbose logs can print tensor contents. A fresh object per session
 * (start-up only): onnxruntime wraps the options in a Proxy, which a frozen object breaks.
 */
function sessionOptions(): InferenceSession.SessionOptions {
  return {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    logSeverityLevel: 2,
  };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** A model loaded at start-up: its onnxruntime session and its v2 metadata. */
export interface LoadedModel {
  readonly metadata: V2ModelMetadata;
  readonly session: InferenceSession;
}

/** Map onnxruntime's value metadata to v2 tensor metadata, refusing what we cannot serve. */
function tensorMetadata(value: InferenceSession.ValueMetadata, where: string): V2TensorMetadata {
  if (!value.isTensor) throw new TypeError(`${where} "${value.name}" is not a tensor`);
  if (value.type !== 'float32') {
    throw new TypeError(`${where} "${value.name}" is ${value.type}; only float32 (FP32) tensors are served`);
  }
  if (value.shape.length === 0) {
    throw new TypeError(
      `${where} "${value.name}" has no declared shape; a fixed rank is required to validate inputs`,
    );
  }
  // v2 metadata marks a symbolic (dynamic) dimension as -1.
  const shape = value.shape.map((d) => (typeof d === 'number' && d > 0 ? d : -1));
  return Object.freeze({ name: value.name, datatype: 'FP32', shape: Object.freeze(shape) });
}

/**
 * Loads every `<modelsDir>/<name>/model.onnx` during `onModuleInit` and serves them. Start-up
 * fails (and the app with it) when the folder holds no model, a folder has no `model.onnx`, a
 * name is not URL-safe, or a model does not load or has inputs this server cannot validate.
 * Features and scores are never logged.
 */
@Injectable()
export class ModelRegistry implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly models = new Map<string, LoadedModel>();
  private ready = false;

  constructor(@Inject(SAMPLE_MODEL_OPTIONS) private readonly options: ResolvedSampleModelOptions) {}

  async onModuleInit(): Promise<void> {
    const dir = this.options.modelsDir;
    const names = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
    if (names.length === 0) throw new Error(`no model folder under ${dir}`);
    try {
      for (const name of names) this.models.set(name, await this.load(name, join(dir, name, MODEL_FILE)));
    } catch (err) {
      await this.releaseAll();
      throw err;
    }
    this.ready = true;
  }

  beforeApplicationShutdown(): void {
    // Readiness turns false first, so a load balancer stops sending work before sessions go.
    this.ready = false;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.releaseAll();
  }

  /** True once every model has loaded, until shutdown begins. */
  isReady(): boolean {
    return this.ready;
  }

  /** Names of the loaded models, sorted. */
  modelNames(): readonly string[] {
    return [...this.models.keys()];
  }

  /** The loaded model called `name`, or `ShieldError('ERR_MODEL_NOT_FOUND')`. */
  get(name: string): LoadedModel {
    const model = this.models.get(name);
    if (model === undefined) throw new ShieldError('ERR_MODEL_NOT_FOUND');
    return model;
  }

  /** The v2 metadata of `name`; unknown → `ERR_MODEL_NOT_FOUND`. */
  metadata(name: string): V2ModelMetadata {
    return this.get(name).metadata;
  }

  /** Throws `ERR_MODEL_NOT_FOUND` for an unknown model and `ERR_MODEL_NOT_READY` during shutdown. */
  assertModelReady(name: string): void {
    this.get(name);
    if (!this.ready) throw new ShieldError('ERR_MODEL_NOT_READY');
  }

  /**
   * Run a v2 infer request. Unknown model → `ERR_MODEL_NOT_FOUND`; bad body →
   * `ERR_INVALID_INPUT`; shutting down → `ERR_MODEL_NOT_READY`.
   */
  async infer(name: string, body: unknown): Promise<V2InferResponse> {
    const model = this.get(name);
    if (!this.ready) throw new ShieldError('ERR_MODEL_NOT_READY');
    const request = validateInferRequest(body, model.metadata, this.options.limits);
    const feeds: Record<string, Tensor> = {};
    for (const input of request.inputs) feeds[input.name] = new Tensor('float32', input.data, input.shape);
    let results: InferenceSession.ReturnType;
    try {
      results = await model.session.run(feeds, request.outputs);
    } catch (err) {
      // Valid input that the runtime still rejects is our bug, not the caller's: a 500, logged by code.
      throw new ShieldError('ERR_INTERNAL', {
        cause: err,
        detail: `onnxruntime failed to run model ${name}`,
      });
    }
    const outputs: V2OutputTensor[] = [];
    for (const outputName of request.outputs) {
      const tensor = results[outputName];
      if (!(tensor instanceof Tensor) || !(tensor.data instanceof Float32Array)) {
        throw new ShieldError('ERR_INTERNAL', { detail: `model ${name} returned no float32 ${outputName}` });
      }
      outputs.push({
        name: outputName,
        datatype: 'FP32',
        shape: [...tensor.dims],
        data: Array.from(tensor.data),
      });
    }
    const { name: modelName } = model.metadata;
    return request.id === undefined
      ? { model_name: modelName, model_version: MODEL_VERSION, outputs }
      : { model_name: modelName, model_version: MODEL_VERSION, id: request.id, outputs };
  }

  private async load(name: string, file: string): Promise<LoadedModel> {
    if (!MODEL_NAME.test(name)) {
      throw new TypeError(
        `model folder "${name}" is not a valid model name (letters, digits, "_", ".", "-"; 64 at most)`,
      );
    }
    if (!isFile(file)) throw new Error(`model "${name}": ${file} is missing`);
    let session: InferenceSession;
    try {
      session = await InferenceSession.create(file, sessionOptions());
    } catch (err) {
      throw new Error(`model "${name}": ${file} failed to load in onnxruntime`, { cause: err });
    }
    try {
      const metadata: V2ModelMetadata = Object.freeze({
        name,
        versions: Object.freeze([MODEL_VERSION]),
        platform: 'onnxruntime',
        inputs: Object.freeze(session.inputMetadata.map((v) => tensorMetadata(v, `model "${name}" input`))),
        outputs: Object.freeze(
          session.outputMetadata.map((v) => tensorMetadata(v, `model "${name}" output`)),
        ),
      });
      return { metadata, session };
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  private async releaseAll(): Promise<void> {
    const sessions = [...this.models.values()].map((m) => m.session);
    this.models.clear();
    this.ready = false;
    await Promise.allSettled(sessions.map((s) => s.release()));
  }
}
