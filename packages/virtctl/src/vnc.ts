// `virtctl vnc`: a local TCP port that carries a VMI's VNC display (raw RFB) over the websocket, for a VNC viewer.
// The websocket opens first, so a VMI that is not running fails at once; then the port listens and the first
// client that connects gets the display (the guest's greeting waits for it: the websocket is paused until then).
// With --proxy-only the port is printed as {"port": N} (KubeVirt's format); otherwise a viewer is launched.
import { spawn } from 'node:child_process';
import net from 'node:net';
import type { Writable } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import { VirtctlError } from './errors.ts';

export interface VncOptions {
  address: string;
  port: number;
  proxyOnly: boolean;
  stdout: Writable;
  stderr: Writable;
  /** The viewers tried, in order, when not --proxy-only. */
  viewers?: readonly ('remote-viewer' | 'vncviewer')[];
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function listen(address: string, port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err) =>
      reject(new VirtctlError(`cannot listen on ${address}:${port} for the VNC viewer: ${err.message}`)),
    );
    server.listen(port, address, () => resolve(server));
  });
}

function viewerArgs(viewer: 'remote-viewer' | 'vncviewer', port: number): string[] {
  return viewer === 'remote-viewer' ? [`vnc://127.0.0.1:${port}`] : [`127.0.0.1:${port}`];
}

/** Starts the first viewer that exists; rejects when none does. */
function launchViewer(port: number, viewers: readonly ('remote-viewer' | 'vncviewer')[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const [first, ...rest] = viewers;
    if (first === undefined) {
      reject(
        new VirtctlError(
          'no VNC viewer found (remote-viewer or vncviewer on PATH); run with --proxy-only and point a viewer at the port it prints',
        ),
      );
      return;
    }
    const child = spawn(first, viewerArgs(first, port), { stdio: 'ignore', detached: false });
    child.once('error', () => resolve(launchViewer(port, rest)));
    child.once('spawn', () => resolve());
  });
}

/** Serves the display until the viewer or the VMI side closes. */
export async function proxyVnc(ws: WebSocket, opts: VncOptions): Promise<void> {
  ws.pause();
  const server = await listen(opts.address, opts.port);
  const port = (server.address() as net.AddressInfo).port;
  if (opts.proxyOnly) opts.stdout.write(`${JSON.stringify({ port })}\n`);
  else await launchViewer(port, opts.viewers ?? ['remote-viewer', 'vncviewer']);

  return new Promise((resolve, reject) => {
    let client: net.Socket | undefined;
    const done = (err?: Error): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      server.close();
      client?.destroy();
      if (ws.readyState === ws.OPEN) ws.close(1000, 'the viewer left');
      if (err === undefined) resolve();
      else reject(err);
    };
    const onSignal = (): void => done();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    server.on('connection', (socket) => {
      if (client !== undefined) {
        // One display per proxy, as KubeVirt's: a second viewer would steal the first one's session.
        socket.destroy();
        return;
      }
      client = socket;
      server.close();
      socket.on('data', (chunk: Buffer) => ws.send(chunk, { binary: true }));
      socket.on('close', () => done());
      socket.on('error', () => done());
      ws.resume();
    });
    ws.on('message', (data) => client?.write(toBuffer(data)));
    ws.once('close', (code: number, reason: Buffer) => {
      if (code === 1000 || code === 1001 || code === 1005) done();
      else
        done(
          new VirtctlError(
            `the VNC stream closed (code ${code})${reason.length > 0 ? `: ${reason.toString()}` : ''}`,
          ),
        );
    });
    ws.on('error', () => {
      // 'close' follows.
    });
  });
}
