import type { Socket } from 'node:net';
import { describe, expect, it } from '@jest/globals';
import { answerClientError } from './client-error';

/** A connection as Node hands it to the handler: what was written, whether it was closed. */
const connection = (inFlight?: { headersSent: boolean }) => {
  const written: string[] = [];
  let destroyed = false;
  const socket = {
    destroyed: false,
    writable: true,
    _httpMessage: inFlight,
    write: (text: string) => written.push(text),
    destroy: () => (destroyed = true),
  };
  return { socket: socket as unknown as Socket, written, closed: () => destroyed };
};
const error = (code: string) => Object.assign(new Error(code), { code });

describe('answerClientError', () => {
  it.each([
    ['ERR_HTTP_REQUEST_TIMEOUT', 408, 'REQUEST_TIMEOUT'],
    ['HPE_HEADER_OVERFLOW', 431, 'HEADERS_TOO_LARGE'],
    ['HPE_CHUNK_EXTENSIONS_OVERFLOW', 413, 'PAYLOAD_TOO_LARGE'],
    ['HPE_INVALID_METHOD', 400, 'VALIDATION_FAILED'],
  ])('%s → %i %s as problem+json, then closes', (code, status, problemCode) => {
    const { socket, written, closed } = connection();
    answerClientError(error(code), socket);
    expect(written).toHaveLength(1);
    const [head, body] = written[0].split('\r\n\r\n');
    expect(head).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
    expect(head).toContain('Content-Type: application/problem+json');
    expect(JSON.parse(body)).toMatchObject({ status, code: problemCode });
    expect(closed()).toBe(true);
  });

  it('writes nothing into an answer already under way on the connection (it is cut off instead)', () => {
    const { socket, written, closed } = connection({ headersSent: true });
    answerClientError(error('HPE_INVALID_METHOD'), socket);
    expect(written).toEqual([]);
    expect(closed()).toBe(true);
    // an answer not yet begun does not stop it
    const before = connection({ headersSent: false });
    answerClientError(error('HPE_INVALID_METHOD'), before.socket);
    expect(before.written).toHaveLength(1);
  });

  it('leaves a reset connection alone', () => {
    const { socket, written, closed } = connection();
    answerClientError(error('ECONNRESET'), socket);
    expect([written, closed()]).toEqual([[], false]);
  });
});
