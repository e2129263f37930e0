import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on a loopback port in front of a server (a fake of the network between us and a
 * store): `cut` closes it and every connection through it, as a server lost mid-run looks to a
 * client; `stall` keeps every connection open but forwards nothing more (a server that stopped
 * answering, or a network dropping packets); `restore` ends either (after a stall, the held
 * connections are closed) and listens again on the same port.
 */
export interface TcpProxy {
  readonly port: number;
  cut(): Promise<void>;
  stall(): void;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export const startTcpProxy = async (target: { host: string; port: number }): Promise<TcpProxy> => {
  const sockets = new Set<Socket>();
  let stalled = false;
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  };
  const open = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const server = createServer((inbound) => {
        track(inbound);
        if (stalled) return; // held open, answered never
        const outbound = connect(target.port, target.host);
        track(outbound);
        inbound.pipe(outbound).pipe(inbound);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve(server));
    });
  let server: Server | undefined = await open(0);
  const port = (server.address() as AddressInfo).port;
  const cut = async () => {
    const closing = server;
    server = undefined;
    if (!closing) return;
    await new Promise<void>((resolve) => {
      closing.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
  };
  return {
    port,
    cut,
    stall() {
      stalled = true;
      for (const socket of sockets) {
        socket.unpipe();
        socket.pause();
      }
    },
    async restore() {
      if (stalled) {
        stalled = false;
        for (const socket of sockets) socket.destroy();
      }
      if (!server) server = await open(port);
    },
    close: cut,
  };
};

/** The host and port of a `mongodb://host:port/...` URL. */
export const mongoAddress = (url: string) => {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || 27017) };
};
