import { availableParallelism } from 'node:os';
import { describe, expect, it } from '@jest/globals';
import { loadConfig } from './app-config';

describe('loadConfig: worker threads', () => {
  it('REBUILD_WORKERS defaults to one per core (at most 4) and takes 1 to 16', () => {
    expect(loadConfig({}).rebuildWorkers).toBe(Math.min(4, availableParallelism()));
    expect(loadConfig({ REBUILD_WORKERS: '1' }).rebuildWorkers).toBe(1);
    expect(loadConfig({ REBUILD_WORKERS: '16' }).rebuildWorkers).toBe(16);
    expect(() => loadConfig({ REBUILD_WORKERS: '0' })).toThrow(
      'REBUILD_WORKERS must be an integer >= 1 and <= 16 (got "0")',
    );
    expect(() => loadConfig({ REBUILD_WORKERS: '17' })).toThrow(
      'REBUILD_WORKERS must be an integer >= 1 and <= 16 (got "17")',
    );
    expect(() => loadConfig({ REBUILD_WORKERS: '2.5' })).toThrow(/REBUILD_WORKERS must be an integer/);
  });

  it('PROJECTOR_THREAD is true unless set to false, and nothing else', () => {
    expect(loadConfig({}).projectorThread).toBe(true);
    expect(loadConfig({ PROJECTOR_THREAD: 'false' }).projectorThread).toBe(false);
    expect(() => loadConfig({ PROJECTOR_THREAD: 'no' })).toThrow(
      'PROJECTOR_THREAD must be one of true, false (got "no")',
    );
  });

  it('bounds nothing else it did not bound before', () => {
    expect(() => loadConfig({ COMMAND_MAX_ATTEMPTS: '0' })).toThrow(
      'COMMAND_MAX_ATTEMPTS must be an integer >= 1 (got "0")',
    );
    expect(loadConfig({ COMMAND_MAX_ATTEMPTS: '1000' }).commandMaxAttempts).toBe(1000);
  });

  it('refuses an AUTH_JWT_SECRET shorter than 32 characters (guessable offline from any token)', () => {
    expect(() => loadConfig({ AUTH_JWT_SECRET: 'changeme' })).toThrow(/at least 32 characters/);
    expect(() => loadConfig({ AUTH_JWT_SECRET: 'x'.repeat(31) })).toThrow(/at least 32 characters/);
    expect(loadConfig({ AUTH_JWT_SECRET: 'x'.repeat(32) }).auth.jwtSecret).toBe('x'.repeat(32));
  });

  it('AUTH_JWKS_URL must be https, or plain http only to this machine', () => {
    const claims = { AUTH_ISSUER: 'https://idp.example.test/', AUTH_AUDIENCE: 'changeledger' };
    for (const url of [
      'http://idp.example.test/jwks.json',
      'ftp://idp.example.test/jwks',
      'not a url',
      'http://10.0.0.5/jwks',
    ]) {
      expect(() => loadConfig({ ...claims, AUTH_JWKS_URL: url })).toThrow(
        /AUTH_JWKS_URL must be an https:\/\/ URL/,
      );
    }
    for (const url of [
      'https://idp.example.test/jwks.json',
      'http://127.0.0.1:8080/jwks.json',
      'http://localhost/jwks',
      'http://[::1]:9/jwks',
    ]) {
      expect(loadConfig({ ...claims, AUTH_JWKS_URL: url }).auth.jwksUrl).toBe(url);
    }
  });

  it('AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE (a shared key set signs for others too)', () => {
    const jwks = { AUTH_JWKS_URL: 'https://idp.example.test/jwks.json' };
    expect(() => loadConfig(jwks)).toThrow(/AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE/);
    expect(() => loadConfig({ ...jwks, AUTH_ISSUER: 'https://idp.example.test/' })).toThrow(/AUTH_AUDIENCE/);
    expect(
      loadConfig({ ...jwks, AUTH_ISSUER: 'https://idp.example.test/', AUTH_AUDIENCE: 'changeledger' }).auth,
    ).toMatchObject({
      jwksUrl: jwks.AUTH_JWKS_URL,
      issuer: 'https://idp.example.test/',
      audience: 'changeledger',
    });
  });

  it('an empty HOST, DATA_DIR or MONGODB_DB counts as unset, as every other variable', () => {
    const config = loadConfig({ HOST: '', DATA_DIR: '', MONGODB_DB: '' });
    expect(config.host).toBe('0.0.0.0');
    expect(config.dataDir).toMatch(/[/\\]data$/);
    expect(config.mongodbDb).toBe('changeledger');
  });
});
