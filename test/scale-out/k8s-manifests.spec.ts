/**
 * The Kubernetes manifests users copy (docs/k8s/sample-model.yaml, linked from docs/production.md)
 * against the sample itself: the container's environment goes through the sample's own
 * `loadSampleConfig`, and the probes, ports, mounted files and variables must match what the
 * sample then listens on, reads and serves. Parsed as YAML 1.1, as Kubernetes reads it (so
 * `0440` is octal).
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { RequestMethod } from '@nestjs/common';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { SAMPLE_TRUST_DOMAIN } from '../../sample-model/src/app/app.module.js';
import { loadSampleConfig, type SampleConfig } from '../../sample-model/src/app/sample-config.js';
import { HealthController } from '../../sample-model/src/inference/health.controller.js';
import { InferenceController } from '../../sample-model/src/inference/inference.controller.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MANIFEST = 'docs/k8s/sample-model.yaml';
/** The bootstrap's grace period for requests in flight (`timeouts.shutdownGracePeriodMs`, default). */
const SHUTDOWN_GRACE_MS = 10_000;

type Obj = Record<string, unknown>;
const obj = (v: unknown, what: string): Obj => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what}: not a mapping`);
  return v as Obj;
};
const list = (v: unknown, what: string): Obj[] => {
  if (!Array.isArray(v)) throw new Error(`${what}: not a list`);
  return v.map((x, i) => obj(x, `${what}[${i}]`));
};
const at = (o: Obj, path: string): unknown =>
  path.split('.').reduce<unknown>((cur, key) => (cur as Obj | undefined)?.[key], o);

const docs = parseAllDocuments(readFileSync(`${ROOT}${MANIFEST}`, 'utf8'), { version: '1.1' }).map((d, i) => {
  expect(d.errors).toEqual([]);
  return obj(d.toJS(), `document ${i}`);
});
const ofKind = (kind: string): Obj[] => docs.filter((d) => d['kind'] === kind);
const one = (kind: string): Obj => {
  const found = ofKind(kind);
  if (found.length !== 1) throw new Error(`${MANIFEST}: ${found.length} ${kind}s, expected one`);
  return found[0] as Obj;
};

const deployment = one('Deployment');
const service = one('Service');
const pdb = one('PodDisruptionBudget');
const certificates = ofKind('Certificate');
const pod = obj(at(deployment, 'spec.template.spec'), 'pod spec');
const containers = list(pod['containers'], 'containers');
const container = containers[0] as Obj;
const podLabels = obj(at(deployment, 'spec.template.metadata.labels'), 'pod labels');

/** The container's environment as the process sees it; values from Secrets get a placeholder. */
function containerEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of list(container['env'], 'env')) {
    const name = String(e['name']);
    if (typeof e['value'] === 'string') env[name] = e['value'];
    else if (at(e, 'valueFrom.secretKeyRef') !== undefined) env[name] = `secret:${name}`;
    else throw new Error(`env ${name}: neither a value nor a secretKeyRef`);
  }
  return env;
}
const env = containerEnv();
const config: SampleConfig = loadSampleConfig(env);

/** The container port a probe or Service names (by name or number). */
function containerPort(ref: unknown): number {
  const ports = list(container['ports'], 'ports');
  const p = ports.find((x) => x['name'] === ref || x['containerPort'] === ref);
  if (p === undefined) throw new Error(`no container port ${String(ref)}`);
  return Number(p['containerPort']);
}

/** The sample's GET routes, from its controllers' Nest metadata (what the server really serves). */
function sampleGetRoutes(): string[] {
  const routes: string[] = [];
  for (const controller of [HealthController, InferenceController]) {
    const base = String(Reflect.getMetadata(PATH_METADATA, controller));
    const proto = controller.prototype as unknown as Record<string, unknown>;
    for (const key of Object.getOwnPropertyNames(proto)) {
      const handler = proto[key];
      if (typeof handler !== 'function' || key === 'constructor') continue;
      const path: unknown = Reflect.getMetadata(PATH_METADATA, handler);
      if (typeof path !== 'string') continue;
      if (Reflect.getMetadata(METHOD_METADATA, handler) === RequestMethod.GET)
        routes.push(`/${base}/${path}`);
    }
  }
  return routes;
}

/** The Secret volume mounted at the folder of `file`, and the key the file is in that Secret. */
function mountedSecretOf(file: string): { secretName: string; key: string; mode: unknown } {
  const mounts = list(container['volumeMounts'], 'volumeMounts');
  const mount = mounts.find((m) => m['mountPath'] === dirname(file));
  if (mount === undefined) throw new Error(`${file}: no volume mounted at ${dirname(file)}`);
  expect(mount['subPath'], `${file}: a subPath mount never receives renewals`).toBeUndefined();
  expect(mount['readOnly']).toBe(true);
  const volume = list(pod['volumes'], 'volumes').find((v) => v['name'] === mount['name']);
  const secret = volume === undefined ? undefined : obj(volume['secret'], `volume ${String(mount['name'])}`);
  if (secret === undefined) throw new Error(`${file}: volume ${String(mount['name'])} missing`);
  return { secretName: String(secret['secretName']), key: basename(file), mode: secret['defaultMode'] };
}

describe(`${MANIFEST}: the sample on Kubernetes`, () => {
  it('is linked from docs/production.md', () => {
    expect(readFileSync(`${ROOT}docs/production.md`, 'utf8')).toContain('k8s/sample-model.yaml');
  });

  it('names only variables the sample reads, and the sample accepts their values', () => {
    const source = readFileSync(`${ROOT}sample-model/src/app/sample-config.ts`, 'utf8');
    for (const name of Object.keys(env)) expect(source, name).toMatch(new RegExp(`\\b${name}\\b`));
    // loadSampleConfig above threw on any malformed value; these are what replicas need.
    expect(config.host).toBe('0.0.0.0');
    expect(config.redisUrl).toBe('secret:SHIELD_REDIS_URL');
    expect(config.dpopOrigin).toMatch(/^https:\/\//);
    expect(config.oidc.audience).toBe(config.dpopOrigin);
  });

  it('runs three replicas, and the disruption budget keeps two of them', () => {
    expect(at(deployment, 'spec.replicas')).toBe(3);
    expect(at(pdb, 'apiVersion')).toBe('policy/v1');
    expect(at(pdb, 'spec.minAvailable')).toBe(2);
    expect(at(pdb, 'spec.selector.matchLabels')).toEqual(at(deployment, 'spec.selector.matchLabels'));
    expect(podLabels).toMatchObject(obj(at(deployment, 'spec.selector.matchLabels'), 'selector'));
  });

  it('exposes the port the sample listens on, over TCP (TLS ends in the replica)', () => {
    expect(containerPort('https')).toBe(config.port);
    const ports = list(at(service, 'spec.ports'), 'service ports');
    expect(ports).toHaveLength(1);
    expect(containerPort(ports[0]?.['targetPort'])).toBe(config.port);
    expect(ports[0]?.['protocol']).toBe('TCP');
    expect(podLabels).toMatchObject(obj(at(service, 'spec.selector'), 'service selector'));
  });

  it.each([
    ['startupProbe', 'live'],
    ['livenessProbe', 'live'],
    ['readinessProbe', 'ready'],
  ])('%s: HTTPS GET of the sample health route /health/%s on its port', (probe, route) => {
    const get = obj(at(container, `${probe}.httpGet`), probe);
    expect(get['scheme']).toBe('HTTPS');
    expect(containerPort(get['port'])).toBe(config.port);
    // The terminus routes (readiness also fails while draining or with an expired certificate).
    expect(get['path']).toBe(`/health/${route}`);
    expect(sampleGetRoutes()).toContain(get['path']);
  });

  it('outlasts the drain and the grace period before the kubelet kills a pod', () => {
    const seconds = Number(pod['terminationGracePeriodSeconds']);
    expect(config.drainDelayMs).toBeGreaterThan(0);
    expect(seconds * 1000).toBeGreaterThan(config.drainDelayMs + SHUTDOWN_GRACE_MS);
  });

  it.each([
    ['server certificate', (c: SampleConfig) => c.tls.cert, 'tls.crt'],
    ['server key', (c: SampleConfig) => c.tls.key, 'tls.key'],
    ['client CA', (c: SampleConfig) => c.mtlsCa, 'ca.crt'],
    ['LLM client certificate', (c: SampleConfig) => c.llm.clientCert, 'tls.crt'],
    ['LLM client key', (c: SampleConfig) => c.llm.clientKey, 'tls.key'],
  ])('%s: a file of a cert-manager Secret, mounted whole, where the sample reads it', (_, pick, key) => {
    const file = pick(config);
    const mounted = mountedSecretOf(file);
    expect(mounted.key).toBe(key);
    expect(mounted.mode).toBe(0o440);
    expect(certificates.map((c) => at(c, 'spec.secretName'))).toContain(mounted.secretName);
  });

  it('the server certificate is for server auth, the LLM one for client auth with the SPIFFE ID', () => {
    const bySecret = (file: string): Obj => {
      const name = mountedSecretOf(file).secretName;
      const cert = certificates.find((c) => at(c, 'spec.secretName') === name);
      if (cert === undefined) throw new Error(`no Certificate for ${name}`);
      return cert;
    };
    const server = bySecret(config.tls.cert);
    expect(at(server, 'spec.usages')).toEqual(['server auth']);
    expect(at(server, 'spec.dnsNames')).toContain(new URL(config.oidc.audience).hostname);
    const client = bySecret(config.llm.clientCert);
    expect(at(client, 'spec.usages')).toEqual(['client auth']);
    expect(at(client, 'spec.uris')).toEqual([`spiffe://${SAMPLE_TRUST_DOMAIN}/sample-model`]);
  });

  it('runs as non-root on a read-only root file system', () => {
    expect(at(pod, 'securityContext.runAsNonRoot')).toBe(true);
    // Secret files are root's, mode 0440: the process reads its keys through the group.
    expect(at(pod, 'securityContext.fsGroup')).toBe(at(pod, 'securityContext.runAsUser'));
    expect(at(container, 'securityContext.readOnlyRootFilesystem')).toBe(true);
    expect(at(container, 'securityContext.allowPrivilegeEscalation')).toBe(false);
  });
});
