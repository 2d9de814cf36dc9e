/**
 * Worker thread entry: one ClientGroup, driven by the runner through
 * messages `{id, cmd, arg}` answered with `{id, ok, result | error}`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ClientGroup, type GroupInit } from './group.js';

if (!parentPort) throw new Error('worker.js runs as a worker thread of the load tool');
const port = parentPort;
const group = new ClientGroup();
group.setup(workerData as GroupInit);

type Handler = (arg: never) => unknown;
const commands: Record<string, Handler> = {
  login: (a: Parameters<ClientGroup['login']>[0]) => group.login(a),
  createRoom: (a: Parameters<ClientGroup['createRoom']>[0]) => group.createRoom(a),
  join: (a: Parameters<ClientGroup['join']>[0]) => group.join(a),
  presences: () => group.presences(),
  send: (a: Parameters<ClientGroup['send']>[0]) => group.send(a),
  progress: () => group.progress(),
  stats: () => group.stats(),
  closeAll: () => group.closeAll(),
  subscribe: (a: Parameters<ClientGroup['subscribe']>[0]) => group.subscribe(a),
  rosterStatus: () => group.rosterStatus(),
  contactPresences: () => group.contactPresences(),
  loginWave: (a: Parameters<ClientGroup['loginWave']>[0]) => group.loginWave(a),
  overloadWave: (a: Parameters<ClientGroup['overloadWave']>[0]) => group.overloadWave(a),
};

port.on('message', (msg: { id: number; cmd: string; arg: unknown }) => {
  const h = commands[msg.cmd];
  if (!h) {
    port.postMessage({ id: msg.id, ok: false, error: `unknown command ${msg.cmd}` });
    return;
  }
  Promise.resolve()
    .then(() => h(msg.arg as never))
    .then(
      (result) => port.postMessage({ id: msg.id, ok: true, result }),
      (err: unknown) => port.postMessage({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
    );
});
