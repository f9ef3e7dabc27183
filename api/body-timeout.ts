/**
 * A deadline for receiving a request's body. Node's own request timeout stops applying once
 * the headers are in, so a client sending its body a byte at a time held a connection (and
 * the memory of the body so far) for as long as it liked. Past the deadline the answer is a
 * 408 written straight to the socket, which is then closed.
 */
import type { FastifyInstance } from 'fastify';

export function bodyTimeout(
  app: FastifyInstance,
  timeoutMs: number,
  body: (seconds: number) => object,
): void {
  app.addHook('onRequest', async (request) => {
    const raw = request.raw;
    const announcesBody =
      raw.headers['transfer-encoding'] !== undefined || Number(raw.headers['content-length'] ?? 0) > 0;
    if (!announcesBody || raw.complete) return;
    const timer = setTimeout(() => {
      if (raw.complete || raw.socket.destroyed) return;
      const text = JSON.stringify(body(timeoutMs / 1000));
      raw.socket.end(
        `HTTP/1.1 408 Request Timeout\r\ncontent-type: application/problem+json\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
      );
      raw.socket.destroySoon();
    }, timeoutMs);
    timer.unref();
    const done = () => clearTimeout(timer);
    raw.once('end', done);
    raw.once('close', done);
  });
}
