import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createHttpsApp, type HttpsApp } from '@inference-shield/https';
import request from 'supertest';
import { AppModule } from '../src/app.module';

// Given by the consumer-test runner: the dev PKI's files and two tokens from the dev IdP.
const ca = readFileSync(process.env.TLS_CA as string);
const inferToken = process.env.TOKEN_INFER as string; // scope models:infer
const readToken = process.env.TOKEN_READ as string; // scope models:read only

/** Plain HTTP/1.1 sent to the HTTPS port: what comes back before the server closes. */
function plaintext(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n');
    });
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => resolve(received));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
  });
}

describe('models API behind Inference Shield (e2e)', () => {
  let https: HttpsApp;
  let url: string;
  let port: number;

  beforeAll(async () => {
    https = await createHttpsApp(AppModule, {
      tls: { cert: process.env.TLS_CERT as string, key: process.env.TLS_KEY as string },
      reload: { watch: false, sighup: false },
    });
    ({ url, port } = await https.listen(0, '127.0.0.1'));
  });

  afterAll(async () => {
    await https?.close();
  });

  it('serves the public probe over HTTPS', () => {
    return request(url).get('/health').ca(ca).expect(200).expect({ status: 'ok' });
  });

  it('answers 200 to a token with the scope', async () => {
    const res = await request(url)
      .post('/models/demo/infer')
      .ca(ca)
      .set('Authorization', `Bearer ${inferToken}`)
      .send({ inputs: [1, 2, 3] })
      .expect(200);
    expect(res.body.sum).toBe(6);
    expect(res.body.scopes).toContain('models:infer');
  });

  it('answers 401 without a token', () => {
    return request(url)
      .post('/models/demo/infer')
      .ca(ca)
      .send({ inputs: [1] })
      .expect(401);
  });

  it('answers 403 to a token without the scope', () => {
    return request(url)
      .post('/models/demo/infer')
      .ca(ca)
      .set('Authorization', `Bearer ${readToken}`)
      .send({ inputs: [1] })
      .expect(403);
  });

  it("keeps the app's own ConflictException as 409 with its message", async () => {
    const res = await request(url)
      .post('/models/demo/load')
      .ca(ca)
      .set('Authorization', `Bearer ${inferToken}`)
      .expect(409);
    expect(res.body.message).toBe('model already loaded');
  });

  it('refuses plaintext HTTP on the HTTPS port', async () => {
    const answer = await plaintext(port);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('ERR_HTTP_TO_HTTPS');
    expect(answer).not.toContain('"status":"ok"');
  });
});
