import { maxHeaderSize, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { problem } from './problem-details.filter';

/** How long a request (headers and body) may take to arrive: Fastify's `requestTimeout`. */
export const REQUEST_TIMEOUT_MS = 60_000;

/**
 * Errors Node meets in a request it cannot hand on (Fastify's `clientErrorHandler`): a request
 * still arriving after REQUEST_TIMEOUT_MS, headers over Node's limit, bytes that are not HTTP.
 * Answered as every other error, problem+json with a code, instead of Fastify's own JSON; then
 * closed. Not while an answer to an earlier request on the connection is being written (a
 * pipelined bad request during an NDJSON export): that answer is cut off instead, as Node does.
 */
export const answerClientError = (error: Error & { code?: string }, socket: Socket): void => {
  // a reset connection is gone: nothing to answer
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    const answer =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? problem(
            'REQUEST_TIMEOUT',
            `the request did not arrive in full within ${REQUEST_TIMEOUT_MS / 1000} s`,
          )
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? problem('HEADERS_TOO_LARGE', `the request headers are larger than ${maxHeaderSize} bytes`)
          : error.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
            ? problem('PAYLOAD_TOO_LARGE', 'the chunk extensions are larger than the server accepts')
            : problem('VALIDATION_FAILED', 'the request is not well-formed HTTP');
    const body = JSON.stringify(answer);
    socket.write(
      `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\nContent-Type: application/problem+json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
};
