// ESM: the OpenAI SDK over mTLS through @inference-shield/upstream/client, no Nest installed.
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { createUpstreamClient, isShieldError } from '@inference-shield/upstream/client';

const { LLM_BASE_URL, LLM_CA, CLIENT_CERT, CLIENT_KEY } = process.env;

const llm = await createUpstreamClient('llm', {
  baseUrl: LLM_BASE_URL,
  ca: { file: LLM_CA },
  clientCertificate: { cert: CLIENT_CERT, key: CLIENT_KEY, watch: false },
  apiKey: { env: 'LLM_API_KEY' },
});
// Without a client certificate: the stand-in requires one, so the handshake must fail.
const noCert = await createUpstreamClient('llm-without-cert', {
  baseUrl: LLM_BASE_URL,
  ca: { file: LLM_CA },
  apiKey: { env: 'LLM_API_KEY' },
});
try {
  const openai = new OpenAI({
    baseURL: llm.baseUrl,
    apiKey: 'set-by-upstream',
    fetch: llm.fetch,
    maxRetries: 0,
  });
  const models = await openai.models.list();
  assert.ok(
    models.data.some((m) => m.id === 'standin-chat'),
    'standin-chat is listed',
  );

  const chat = await openai.chat.completions.create({
    model: 'standin-chat',
    messages: [{ role: 'user', content: 'Say hello.' }],
  });
  const content = chat.choices[0]?.message.content ?? '';
  assert.ok(content.length > 0, 'a completion came back');

  const stream = await openai.chat.completions.create({
    model: 'standin-chat',
    messages: [{ role: 'user', content: 'Count to three.' }],
    stream: true,
  });
  let streamed = '';
  for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
  assert.ok(streamed.length > 0, 'a streamed completion came back');

  const refused = new OpenAI({
    baseURL: noCert.baseUrl,
    apiKey: 'set-by-upstream',
    fetch: noCert.fetch,
    maxRetries: 0,
  });
  await assert.rejects(refused.models.list(), (err) => {
    // The SDK wraps the transport failure; the upstream's coded error is its cause.
    const cause = err?.cause;
    assert.ok(err instanceof OpenAI.APIConnectionError || isShieldError(cause), `unexpected ${err}`);
    return true;
  });
  console.log(
    `esm ok: ${models.data.length} models, completion "${content.slice(0, 40)}", streamed ${streamed.length} chars, no-cert refused`,
  );
} finally {
  await llm.close();
  await noCert.close();
}
