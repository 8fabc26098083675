/**
 * The load generator's HTTP client: JSON over plain HTTP with one keep-alive agent, so the
 * figures measure the members, not the client's connection set-up (Node's global fetch costs
 * several times a keep-alive `http.request` per call). Used for both designs alike.
 */
import http from 'node:http';
import { diedOnIdleSocket } from '../../shared/platform/http.ts';

export interface JsonResponse<T = any> {
  status: number;
  body: T;
}

export interface JsonClient {
  request<T = any>(method: string, url: string, options?: { body?: unknown; token?: string; timeoutMs?: number }): Promise<JsonResponse<T>>;
  close(): void;
}

export function createJsonClient(maxSockets = 256): JsonClient {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  return {
    request(method, url, options = {}) {
      const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
      // A kept-alive socket the server closes as idle just as a request goes out on it: sent once
      // more on a fresh socket, as the members' own client does.
      const attempt = (retried: boolean): Promise<JsonResponse> => new Promise((resolve, reject) => {
        const req = http.request(url, {
          method,
          agent,
          headers: {
            accept: 'application/json',
            ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
            ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          },
        }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = text;
            if (/json/.test(res.headers['content-type'] ?? '') && text) {
              try { body = JSON.parse(text); } catch { body = text; }
            }
            resolve({ status: res.statusCode ?? 0, body: body as never });
          });
        });
        req.setTimeout(options.timeoutMs ?? 600_000, () => req.destroy(new Error(`timeout: ${method} ${url}`)));
        req.on('error', (err: NodeJS.ErrnoException) => (diedOnIdleSocket(req, err) && !retried ? resolve(attempt(true)) : reject(err)));
        req.end(payload);
      });
      return attempt(false);
    },
    close: () => agent.destroy(),
  };
}

/** Runs `tasks` with at most `concurrency` in flight, in order of the array. */
export async function runPool<T>(items: T[], concurrency: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      await task(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
}
