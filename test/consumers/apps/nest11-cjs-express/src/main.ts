import 'reflect-metadata';
import { createHttpsApp } from '@inference-shield/https';
import { AppModule } from './app.module';

async function bootstrap(): Promise<void> {
  const https = await createHttpsApp(AppModule, {
    tls: {
      cert: process.env.TLS_CERT ?? '.shield/pki/localhost.pem',
      key: process.env.TLS_KEY ?? '.shield/pki/localhost-key.pem',
    },
  });
  const { url } = await https.listen(Number(process.env.PORT ?? 8443), '127.0.0.1');
  console.log(`listening on ${url}`);
  const stop = (): void => void https.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
void bootstrap();
