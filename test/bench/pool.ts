/**
 * The runner's side of the worker threads: each worker holds one
 * ClientGroup; `call` sends a command and resolves with its answer.
 * Occupant i lives in worker i mod W.
 */
import { Worker } from 'node:worker_threads';
import type { ClientGroup, GroupInit } from './group.js';

type Commands = {
  [K in 'login' | 'createRoom' | 'join' | 'presences' | 'send' | 'progress' | 'stats' | 'closeAll' | 'subscribe' | 'rosterStatus' | 'contactPresences' | 'loginWave' | 'overloadWave']: ClientGroup[K];
};
type Arg<K extends keyof Commands> = Parameters<Commands[K]> extends [infer A] ? A : undefined;
type Result<K extends keyof Commands> = Awaited<ReturnType<Commands[K]>>;

class GroupWorker {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private dead: Error | null = null;

  constructor(
    readonly index: number,
    private readonly worker: Worker,
  ) {
    worker.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`worker ${index}: ${m.error}`));
    });
    const fail = (err: Error): void => {
      this.dead = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', (err) => fail(new Error(`worker ${index} crashed: ${err.stack ?? err.message}`)));
    worker.on('exit', (code) => fail(new Error(`worker ${index} exited with code ${code}`)));
  }

  call<K extends keyof Commands>(cmd: K, arg?: Arg<K>): Promise<Result<K>> {
    if (this.dead) return Promise.reject(this.dead);
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, cmd, arg });
    });
  }

  async terminate(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

export class Pool {
  private constructor(readonly workers: GroupWorker[]) {}

  static start(count: number, init: GroupInit): Pool {
    const url = new URL('./worker.js', import.meta.url);
    return new Pool(Array.from({ length: Math.max(1, count) }, (_, i) => new GroupWorker(i, new Worker(url, { workerData: init }))));
  }

  /** The worker holding occupant `idx`. */
  of(idx: number): GroupWorker {
    return this.workers[idx % this.workers.length] as GroupWorker;
  }

  all<K extends keyof Commands>(cmd: K, arg?: Arg<K> | ((w: number) => Arg<K>)): Promise<Array<Result<K>>> {
    return Promise.all(this.workers.map((w, i) => w.call(cmd, typeof arg === 'function' ? (arg as (w: number) => Arg<K>)(i) : arg)));
  }

  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
