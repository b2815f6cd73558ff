/**
 * A small bounded in-memory storage for oidc-provider. JWT access tokens are not stored at all;
 * this only holds the little state the provider keeps for itself. Bounded in entries and time,
 * so a flood of requests cannot grow the dev IdP's memory without limit.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';

const MAX_ENTRIES_PER_MODEL = 1000;
const DEFAULT_TTL_SECONDS = 3600;

interface Entry {
  payload: AdapterPayload;
  expiresAt: number;
}

/** Create an adapter factory whose storage lives and dies with one dev IdP instance. */
export function createMemoryAdapterFactory(): (name: string) => Adapter {
  const models = new Map<string, Map<string, Entry>>();

  return (name: string): Adapter => {
    let store = models.get(name);
    if (!store) {
      store = new Map();
      models.set(name, store);
    }
    const entries = store;

    const get = (id: string): Entry | undefined => {
      const entry = entries.get(id);
      if (entry && entry.expiresAt <= Date.now()) {
        entries.delete(id);
        return undefined;
      }
      return entry;
    };
    const findBy = (field: 'uid' | 'userCode', value: string): AdapterPayload | undefined => {
      for (const id of entries.keys()) {
        const entry = get(id);
        if (entry?.payload[field] === value) return entry.payload;
      }
      return undefined;
    };

    return {
      async upsert(id, payload, expiresIn) {
        entries.delete(id);
        // Map keeps insertion order: the first key is the oldest, evicted first.
        while (entries.size >= MAX_ENTRIES_PER_MODEL) {
          const oldest = entries.keys().next();
          if (oldest.done) break;
          entries.delete(oldest.value);
        }
        entries.set(id, { payload, expiresAt: Date.now() + (expiresIn ?? DEFAULT_TTL_SECONDS) * 1000 });
      },
      async find(id) {
        return get(id)?.payload;
      },
      async findByUid(uid) {
        return findBy('uid', uid);
      },
      async findByUserCode(userCode) {
        return findBy('userCode', userCode);
      },
      async consume(id) {
        const entry = get(id);
        if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id) {
        entries.delete(id);
      },
      async revokeByGrantId(grantId) {
        for (const [id, entry] of entries) if (entry.payload.grantId === grantId) entries.delete(id);
      },
    };
  };
}
