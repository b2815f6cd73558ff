/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS consumer: require() is what it tests */
// CommonJS: the same call with require(), as an older script or tool would make it.
const assert = require('node:assert/strict');
const { OpenAI } = require('openai');
const { createUpstreamClient } = require('@inference-shield/upstream/client');

async function main() {
  const { LLM_BASE_URL, LLM_CA, CLIENT_CERT, CLIENT_KEY } = process.env;
  const llm = await createUpstreamClient('llm', {
    baseUrl: LLM_BASE_URL,
    ca: { file: LLM_CA },
    clientCertificate: { cert: CLIENT_CERT, key: CLIENT_KEY, watch: false },
    apiKey: { env: 'LLM_API_KEY' },
  });
  try {
    const openai = new OpenAI({
      baseURL: llm.baseUrl,
      apiKey: 'set-by-upstream',
      fetch: llm.fetch,
      maxRetries: 0,
    });
    const chat = await openai.chat.completions.create({
      model: 'standin-chat',
      messages: [{ role: 'user', content: 'Say hello.' }],
    });
    const content = chat.choices[0]?.message.content ?? '';
    assert.ok(content.length > 0, 'a completion came back');
    const embedding = await openai.embeddings.create({ model: 'standin-embed', input: 'hello' });
    assert.ok((embedding.data[0]?.embedding.length ?? 0) > 0, 'an embedding came back');
    console.log(
      `cjs ok: completion "${content.slice(0, 40)}", embedding of ${embedding.data[0].embedding.length}`,
    );
  } finally {
    await llm.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
