import { once } from 'node:events';
import type { Server } from 'node:http';
import express, { type Request } from 'express';
import { expressRateLimit, type RateLimitOptions } from '../../../src/rate/http/index.js';
import { contract, type Start } from './contract.js';
import { urlOf } from './helpers.js';

const start: Start = async (options, variant) => {
  const app = express();
  const limit = expressRateLimit<Request>(options as RateLimitOptions<Request>);
  app.use(limit);
  const ok = (_req: Request, res: express.Response): void => void res.send('ok');
  if (variant?.twice === true) app.post('/login', limit, ok);
  app.all('/{*any}', ok);
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: urlOf(server),
    close: () => new Promise<void>((resolve) => server.close(() => resolve()).closeAllConnections()),
  };
};

contract('express', start, (req: Request) => req.path);
