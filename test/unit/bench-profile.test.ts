/**
 * The benchmark's profile summary names each project file's category by its path
 * (scripts/bench/profile.ts): when a file moves, its rule must move with it, or its time is
 * silently counted as the application's.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { categoryOfFrame } from '../../scripts/bench/profile.ts';

const ROOT = resolve(import.meta.dirname, '../..');

describe('benchmark profile categories', () => {
  it('when the shared modules of crypto, storage, logging, HTTP and validation are profiled, then each is counted in its own category, not as the application', () => {
    const expected: [string, string][] = [
      ['shared/crypto.ts', 'crypto'],
      ['shared/federation/messages.ts', 'crypto'],
      ['shared/platform/base64.ts', 'crypto'],
      ['shared/platform/db.ts', 'sequelize/sqlite'],
      ['services/municipality/residents/model.ts', 'sequelize/sqlite'],
      ['shared/platform/log.ts', 'logging'],
      ['shared/federation/member-http.ts', 'http/tls'],
      ['shared/federation/member-client.ts', 'http/tls'],
      ['shared/platform/http.ts', 'http/tls'],
      ['shared/platform/server.ts', 'http/tls'],
      ['shared/platform/errors.ts', 'http/tls'],
      ['shared/platform/validation.ts', 'validation'],
      ['gateway/routing/schemas.ts', 'validation'],
      ['services/municipality/answering/service.ts', 'app'],
    ];
    for (const [file, category] of expected) {
      expect(existsSync(resolve(ROOT, file)), `${file} exists`).to.equal(true);
      expect(categoryOfFrame({ functionName: 'f', url: pathToFileURL(resolve(ROOT, file)).href }), file).to.equal(category);
    }
  });

  it('when a frame is the garbage collector or has no file, then it is gc or left to its caller', () => {
    expect(categoryOfFrame({ functionName: '(garbage collector)', url: '' })).to.equal('gc');
    expect(categoryOfFrame({ functionName: 'anonymous', url: '' })).to.equal(undefined);
  });
});
