import { Agent, request } from 'node:http';

/** A non-2xx answer. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly path: string,
    readonly body: string,
  ) {
    super(`${path}: HTTP ${status}`);
    this.name = 'HttpError';
  }
}

/** One answer. */
export interface HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

/**
 * A tiny HTTP client on `node:http` with a keep-alive agent and `maxSockets: Infinity`, so the
 * client never caps concurrency itself (undici's pool behind `fetch` would) and what the server
 * measures is what the code under test did.
 *
 * @example
 * ```ts
 * const client = new HttpClient(server.url);
 * const body = await client.get('/pool/3/status'); // rejects with HttpError on >= 400
 * client.close();
 * ```
 */
export class HttpClient {
  readonly #base: URL;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: Infinity });

  constructor(baseUrl: string) {
    this.#base = new URL(baseUrl);
  }

  /** Sends one request and resolves with any status (never rejects on a status). */
  request(
    method: string,
    path: string,
    options: { body?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.#base.hostname,
          port: this.#base.port,
          path,
          method,
          agent: this.#agent,
          headers: options.headers,
          signal: options.signal,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(options.body);
    });
  }

  /** GET; resolves with the body, rejects with {@link HttpError} on a status >= 400. */
  get(path: string, options?: { signal?: AbortSignal }): Promise<string> {
    return this.#ok('GET', path, options);
  }

  /** PUT `body`; resolves with the response body, rejects with {@link HttpError} on >= 400. */
  put(path: string, body: string, options?: { signal?: AbortSignal }): Promise<string> {
    return this.#ok('PUT', path, { ...options, body });
  }

  /** POST `body`; resolves with the response body, rejects with {@link HttpError} on >= 400. */
  post(path: string, body: string, options?: { signal?: AbortSignal }): Promise<string> {
    return this.#ok('POST', path, { ...options, body });
  }

  async #ok(
    method: string,
    path: string,
    options: { body?: string; signal?: AbortSignal } = {},
  ): Promise<string> {
    const res = await this.request(method, path, options);
    if (res.status >= 400) throw new HttpError(res.status, path, res.body);
    return res.body;
  }

  /** Closes the pooled sockets. */
  close(): void {
    this.#agent.destroy();
  }
}
