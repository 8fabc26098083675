import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { answerMalformedRequests } from './http.ts';

/** Listens on host:port (0 = any free port) and resolves once the socket is bound. */
export function listen(app: Express, port: number, host = '127.0.0.1'): Promise<{ server: Server; url: string }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host);
    answerMalformedRequests(server);
    server.once('error', reject);
    server.once('listening', () => {
      const address = server.address() as AddressInfo;
      resolve({ server, url: `http://${host}:${address.port}` });
    });
  });
}

/** Closes a server, ending idle keep-alive sockets so shutdown does not hang. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections?.();
  });
}

/**
 * For a member's own process (its entry point calls this first): error stacks without source
 * maps. tsx turns them on, and Sequelize's SQLite dialect reads `new Error().stack` on every query;
 * mapping each frame cost 12 % of a municipality's CPU in the benchmark's profile. Stacks then
 * name tsx's output rather than the TypeScript line. Starting node with --enable-source-maps (or
 * setting it in NODE_OPTIONS) keeps them, for a member being debugged.
 */
export function memberProcessStackTraces(): void {
  const asked = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].includes('--enable-source-maps');
  if (!asked) process.setSourceMapsEnabled(false);
}

/** Runs `stop` once on SIGINT/SIGTERM, then exits. */
export function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    stop().then(() => process.exit(0), (err) => {
      console.error(`shutdown after ${signal} failed`, err);
      process.exit(1);
    });
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
