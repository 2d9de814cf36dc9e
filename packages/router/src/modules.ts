import type { IqRoute, IqTarget, ServerModule } from './types.js';

/** Lookup of iq handlers by (target, type, namespace, element), built once. */
export class ModuleTable {
  private readonly routes = new Map<string, IqRoute>();

  constructor(readonly list: ServerModule[]) {
    for (const m of list) {
      for (const r of m.iq ?? []) {
        const key = ModuleTable.key(r.target, r.type, r.xmlns, r.name);
        if (this.routes.has(key)) throw new Error(`two modules handle ${key}`);
        this.routes.set(key, r);
      }
    }
  }

  private static key(target: string, type: string, xmlns: string, name: string): string {
    return `${target} ${type} ${xmlns} ${name}`;
  }

  find(target: IqTarget, type: string, xmlns: string | undefined, name: string): IqRoute | undefined {
    return this.routes.get(ModuleTable.key(target, type, xmlns ?? '', name));
  }
}
