import { describe, expect, it } from 'vitest';
import { parseWorkloadApiAddress } from './workload-api.address.js';
import { resolveWorkloadApiSourceOptions } from './workload-api-source.options.js';

describe('parseWorkloadApiAddress', () => {
  it.each([
    ['unix:///run/spire/agent.sock', 'unix:///run/spire/agent.sock', '/run/spire/agent.sock'],
    ['unix:/run/spire/agent.sock', 'unix:///run/spire/agent.sock', '/run/spire/agent.sock'],
    ['unix:relative/agent.sock', 'unix:relative/agent.sock', 'relative/agent.sock'],
  ])('accepts %s', (value, target, shown) => {
    expect(parseWorkloadApiAddress('address', value, false)).toEqual({ target, transport: 'unix', shown });
  });

  it.each([
    ['tcp://127.0.0.1:8081', 'ipv4:127.0.0.1:8081'],
    ['tcp://[::1]:8081', 'ipv6:[::1]:8081'],
  ])('accepts %s with allowTcp', (value, target) => {
    expect(parseWorkloadApiAddress('address', value, true)).toMatchObject({ target, transport: 'tcp' });
  });

  it.each([
    ['tcp://127.0.0.1:8081', false, /allowTcp/],
    ['tcp://agent.local:8081', true, /an IP address, not a host name/],
    ['tcp://127.0.0.1', true, /tcp:\/\/IP:port/],
    ['tcp://127.0.0.1:70000', true, /tcp:\/\/IP:port/],
    ['tcp://127.0.0.1:8081/path', true, /tcp:\/\/IP:port/],
    ['unix://host/run/agent.sock', false, /has no host/],
    ['unix:///run/spire/', false, /socket file/],
    ['unix:', false, /socket file/],
    ['unix:///run/agent.sock?x=1', false, /query/],
    ['unix:///run/agent.sock#f', false, /fragment/],
    ['unix:///run/agent sock', false, /whitespace/],
    ['unix:///run/agent\u0000.sock', false, /control/],
    ['/run/agent.sock', false, /must start with unix: or tcp:/],
    ['http://127.0.0.1:80', true, /must start with unix: or tcp:/],
    ['', false, /Workload API address/],
  ])('refuses %j (allowTcp %s)', (value, allowTcp, message) => {
    expect(() => parseWorkloadApiAddress('address', value, allowTcp)).toThrow(message);
  });

  it('refuses a non-string', () => {
    expect(() => parseWorkloadApiAddress('address', 42, false)).toThrow(TypeError);
  });
});

describe('resolveWorkloadApiSourceOptions', () => {
  it('reads SPIFFE_ENDPOINT_SOCKET when no address is given, and fills the defaults', () => {
    const resolved = resolveWorkloadApiSourceOptions({}, { SPIFFE_ENDPOINT_SOCKET: 'unix:///tmp/a.sock' });
    expect(resolved).toMatchObject({
      address: { target: 'unix:///tmp/a.sock' },
      startupTimeoutMs: 10_000,
      x509: true,
      jwtBundles: false,
      jwtSvidTimeoutMs: 5000,
      jwtSvidCacheSize: 64,
    });
    expect(Object.isFrozen(resolved)).toBe(true);
  });

  it('prefers the option over the environment', () => {
    expect(
      resolveWorkloadApiSourceOptions(
        { address: 'unix:///tmp/b.sock' },
        { SPIFFE_ENDPOINT_SOCKET: 'unix:///tmp/a.sock' },
      ).address.target,
    ).toBe('unix:///tmp/b.sock');
  });

  it.each([
    [{}, /"address" is required when SPIFFE_ENDPOINT_SOCKET is not set/],
    [{ address: 'unix:///a', adress: 'x' }, /unknown option "adress"/],
    [{ address: 'unix:///a', startupTimeoutMs: 0 }, /"startupTimeoutMs" must be an integer/],
    [{ address: 'unix:///a', spiffeId: 'spiffe://example.org' }, /"spiffeId" must be a workload SPIFFE ID/],
    [{ address: 'unix:///a', spiffeId: 'https://example.org/x' }, /"spiffeId"/],
    [{ address: 'unix:///a', x509: 'yes' }, /"x509" must be a boolean/],
    [{ address: 'unix:///a', logger: { log() {} } }, /"logger" must have log, warn and error/],
    [{ address: 'unix:///a', reconnectInitialDelayMs: 1000, reconnectMaxDelayMs: 500 }, /must not be less/],
  ])('refuses %j', (options, message) => {
    expect(() => resolveWorkloadApiSourceOptions(options, {})).toThrow(message);
  });

  it('refuses a tcp: SPIFFE_ENDPOINT_SOCKET without allowTcp, naming the variable', () => {
    expect(() =>
      resolveWorkloadApiSourceOptions({}, { SPIFFE_ENDPOINT_SOCKET: 'tcp://127.0.0.1:1' }),
    ).toThrow(/"SPIFFE_ENDPOINT_SOCKET" is a tcp: address/);
  });
});
