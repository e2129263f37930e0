import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { problem } from './problem-details.filter';

/**
 * Errors Node meets before a request exists (Fastify's `clientErrorHandler`): a request still
 * arriving after `requestTimeout`, headers over Node's limit, bytes that are not HTTP. Answered
 * as every other error, problem+json with a code, instead of Fastify's own JSON; then closed.
 */
export const answerClientError = (error: Error & { code?: string }, socket: Socket): void => {
  // a reset connection is gone: nothing to answer
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const answer =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? problem('REQUEST_TIMEOUT', 'the request did not arrive in full within 60 s')
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? problem('HEADERS_TOO_LARGE', 'the request headers are larger than the server accepts (16 KiB)')
        : problem('VALIDATION_FAILED', 'the request is not well-formed HTTP');
  const body = JSON.stringify(answer);
  const { status } = answer;
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
};
