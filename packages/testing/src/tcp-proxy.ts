import net from "node:net";

export type ProxyMode = "up" | "down" | "hang";

/**
 * A TCP proxy on 127.0.0.1 in front of `targetPort` that a test controls, to cut a service off
 * without touching the service itself:
 *   up   - forwards;
 *   down - refuses new connections (the listener is closed) and cuts open ones;
 *   hang - accepts connections and reads them, but never forwards or answers (a stalled peer);
 *          open connections are cut when entering it.
 * The port stays the same across modes.
 */
export async function startTcpProxy(targetPort: number, targetHost = "127.0.0.1") {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  let mode: ProxyMode = "up";
  let accepted = 0;

  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  };
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const srv = net.createServer((client) => {
        accepted++;
        track(client);
        client.on("error", () => client.destroy());
        if (mode === "hang") {
          client.resume(); // swallow whatever it sends
          return;
        }
        const upstream = net.connect(targetPort, targetHost);
        track(upstream);
        const cut = () => {
          client.destroy();
          upstream.destroy();
        };
        client.on("error", cut);
        upstream.on("error", cut);
        client.on("close", cut);
        upstream.on("close", cut);
        client.pipe(upstream).pipe(client);
      });
      srv.once("error", reject);
      srv.listen(port, "127.0.0.1", () => {
        port = (srv.address() as net.AddressInfo).port;
        server = srv;
        resolve();
      });
    });
  const closeListener = () =>
    new Promise<void>((resolve) => {
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
    });
  const cutAll = () => {
    for (const s of sockets) s.destroy();
  };

  await listen();
  return {
    get port() {
      return port;
    },
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    /** Connections accepted so far, in any mode: whether a client reached for the target at all. */
    get accepted() {
      return accepted;
    },
    get mode() {
      return mode;
    },
    async set(next: ProxyMode): Promise<void> {
      if (next === mode) return;
      mode = next;
      cutAll();
      if (next === "down") await closeListener();
      else if (!server) await listen();
    },
    down() {
      return this.set("down");
    },
    up() {
      return this.set("up");
    },
    hang() {
      return this.set("hang");
    },
    async close(): Promise<void> {
      cutAll();
      await closeListener();
    },
  };
}

export type TcpProxy = Awaited<ReturnType<typeof startTcpProxy>>;
