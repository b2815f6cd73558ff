import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { preshapeRequests } from './request-shape.js';

describe('preshapeRequests', () => {
  it('gives each request an own, undefined `user` before any other request listener runs', () => {
    const server = new EventEmitter();
    const seen: boolean[] = [];
    server.on('request', (req: object) => seen.push(Object.hasOwn(req, 'user')));
    const remove = preshapeRequests(server);
    const req: { user?: unknown } = {};
    server.emit('request', req);
    expect(seen).toEqual([true]);
    expect(req.user).toBeUndefined();

    remove();
    server.emit('request', {});
    expect(seen).toEqual([true, false]);
  });

  it('never overwrites a `user` that is already there', () => {
    const server = new EventEmitter();
    preshapeRequests(server);
    const req = { user: 'set-by-someone-else' };
    server.emit('request', req);
    expect(req.user).toBe('set-by-someone-else');
  });
});
