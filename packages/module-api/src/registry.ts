/**
 * The one registry of a process: built once at the composition root from
 * the module definitions and handed to every router and edge, so a stanza
 * gets the same treatment whichever service routes it (DESIGN.md Modules).
 */
import { parse as parseXml, type Element } from 'ltx';
import type { ConfigSection } from '@hyphae/config';
import type {
  DiscoIdentity, EntityKind, Hook, HookName, HookResult, Hooks, IqRequest, IqRoute, IqTarget, ModuleDefinition, ModuleDeps,
  ModuleInstance, ModuleView, NonzaHandler, PreAuthIqHandler, StanzaKind, StreamFeature, StreamStage, UserOpHandler,
  LifecycleHookName, LifecycleEventOf, StanzaHookName, StanzaEventOf,
} from './types.js';

/** A definition with its instance, as the registry holds it. */
export interface LoadedModule {
  readonly definition: ModuleDefinition<unknown>;
  readonly instance: ModuleInstance;
}

type EventOf<N extends StanzaHookName> = StanzaEventOf<N>;

/** The deps every module shares; `options` is filled per module from its section. */
export type SharedDeps = Omit<ModuleDeps<unknown>, 'options' | 'modules'>;

const NONE: readonly never[] = [];

/** Thrown at start when two modules claim the same thing (an iq, a nonza, an op, a name). */
export class ModuleConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModuleConflictError';
  }
}

export class ModuleRegistry implements ModuleView {
  readonly modules: readonly LoadedModule[];
  private readonly iqRoutes = new Map<string, IqRoute>();
  private readonly hookLists = new Map<HookName, Array<(e: never) => unknown>>();
  private readonly nonzaHandlers = new Map<string, NonzaHandler>();
  private readonly preAuth = new Map<string, PreAuthIqHandler>();
  private readonly ops = new Map<string, UserOpHandler>();

  /** Builds every enabled module in priority order (stable: the order given breaks ties). */
  static create(definitions: readonly ModuleDefinition<unknown>[], deps: SharedDeps): ModuleRegistry {
    const defs = definitions;
    const names = new Set<string>();
    const loaded: LoadedModule[] = [];
    let registry: ModuleRegistry | null = null;
    const modules = (): ModuleRegistry => {
      if (!registry) throw new Error('the module registry is still being built');
      return registry;
    };
    const ordered = defs.map((d, i) => ({ d, i })).sort((a, b) => (a.d.priority ?? 0) - (b.d.priority ?? 0) || a.i - b.i);
    for (const { d } of ordered) {
      if (names.has(d.name)) throw new ModuleConflictError(`two modules are named ${d.name}`);
      names.add(d.name);
      const options = d.config ? moduleSection(deps.config.modules, d.config) : undefined;
      if (d.enabled && !d.enabled(deps.config, options)) continue;
      const instance = d.create({ ...deps, options, modules, logger: deps.logger.child({ module: d.name }) });
      loaded.push({ definition: d, instance });
    }
    registry = new ModuleRegistry(loaded);
    return registry;
  }

  /** A registry of ready-made instances by name, in that order (unit tests). */
  static of(instances: Readonly<Record<string, ModuleInstance>>): ModuleRegistry {
    return new ModuleRegistry(Object.entries(instances).map(([name, instance]) => ({
      definition: { name, description: name, specs: [], create: () => instance },
      instance,
    })));
  }

  /** A registry of ready-made instances. */
  constructor(modules: readonly LoadedModule[]) {
    this.modules = modules;
    for (const { definition: d, instance: m } of modules) {
      for (const r of m.iq ?? NONE) {
        const key = iqKey(r.target, r.type, r.xmlns, r.name);
        if (this.iqRoutes.has(key)) throw new ModuleConflictError(`two modules handle ${key} (${d.name})`);
        this.iqRoutes.set(key, r);
      }
      for (const [name, hook] of Object.entries(m.hooks ?? {}) as Array<[HookName, (e: never) => unknown]>) {
        const list = this.hookLists.get(name) ?? [];
        list.push(hook);
        this.hookLists.set(name, list);
      }
      for (const n of m.nonzas ?? NONE) {
        const key = `${n.stage} ${n.xmlns} ${n.name}`;
        if (this.nonzaHandlers.has(key)) throw new ModuleConflictError(`two modules handle the nonza ${key} (${d.name})`);
        this.nonzaHandlers.set(key, n);
      }
      for (const p of m.preAuthIq ?? NONE) {
        const key = `${p.xmlns} ${p.name}`;
        if (this.preAuth.has(key)) throw new ModuleConflictError(`two modules handle the pre-auth iq ${key} (${d.name})`);
        this.preAuth.set(key, p);
      }
      for (const [op, handler] of Object.entries(m.userOps ?? {})) {
        if (this.ops.has(op)) throw new ModuleConflictError(`two modules handle the user operation ${op} (${d.name})`);
        this.ops.set(op, handler);
      }
    }
  }

  // --- iq and disco ------------------------------------------------------------

  findIq(target: IqTarget, type: string, xmlns: string | undefined, name: string): IqRoute | undefined {
    return this.iqRoutes.get(iqKey(target, type, xmlns ?? '', name));
  }

  /** Disco features of a kind of entity, sorted, without duplicates. */
  features(kind: EntityKind): string[] {
    const all = new Set<string>();
    for (const { instance } of this.modules) for (const f of instance.features?.[kind] ?? NONE) all.add(f);
    return [...all].sort();
  }

  identities(kind: EntityKind): DiscoIdentity[] {
    return this.modules.flatMap(({ instance }) => [...(instance.identities?.[kind] ?? NONE)]);
  }

  /** The first module that claims a host disco node answers it; null when none does. */
  async hostDiscoNode(kind: 'info' | 'items', node: string, req: IqRequest): Promise<Element[] | null> {
    for (const { instance } of this.modules) {
      const children = await instance.hostDiscoNode?.(kind, node, req);
      if (children) return children;
    }
    return null;
  }

  // --- hooks -------------------------------------------------------------------------

  /** Whether any module hooks `name`: callers skip building the event when none does. */
  has(name: HookName): boolean {
    return this.hookLists.has(name);
  }

  /** Runs a stanza hook's handlers in order until one stops the stanza. */
  async run<N extends StanzaHookName>(name: N, event: EventOf<N>): Promise<HookResult> {
    return this.runSync(name, event);
  }

  /**
   * Like `run`, but synchronous for as long as the hooks are: the result
   * itself when every hook decided at once (the usual "not my stanza"), a
   * promise from the first hook that needed one. Per-delivery paths use it
   * to stay synchronous.
   */
  runSync<N extends StanzaHookName>(name: N, event: EventOf<N>): HookResult | Promise<HookResult> {
    const list = this.hookLists.get(name) as Array<Hook<EventOf<N>>> | undefined;
    if (!list) return undefined;
    for (let i = 0; i < list.length; i++) {
      const result = (list[i] as Hook<EventOf<N>>)(event);
      if (result instanceof Promise) return this.finishAsync(list, i, result, event);
      if (result === 'stop') return 'stop';
    }
    return undefined;
  }

  private async finishAsync<E>(list: Array<Hook<E>>, at: number, pending: Promise<HookResult>, event: E): Promise<HookResult> {
    if ((await pending) === 'stop') return 'stop';
    for (let i = at + 1; i < list.length; i++) {
      const result = (list[i] as Hook<E>)(event);
      if ((result instanceof Promise ? await result : result) === 'stop') return 'stop';
    }
    return undefined;
  }

  /** Runs every lifecycle handler; one failing does not keep the others from running. */
  async lifecycle<N extends LifecycleHookName>(name: N, event: LifecycleEventOf<N>, onError: (err: unknown) => void): Promise<void> {
    const list = this.hookLists.get(name) as Array<(e: LifecycleEventOf<N>) => void | Promise<void>> | undefined;
    if (!list) return;
    for (const hook of list) {
      try {
        await hook(event);
      } catch (err) {
        onError(err);
      }
    }
  }

  // --- streams and actors --------------------------------------------------------------

  streamFeatures(stage: StreamStage): StreamFeature[] {
    return this.modules.flatMap(({ instance }) => (instance.streamFeatures ?? NONE).filter((f) => f.stage === stage));
  }

  nonza(stage: StreamStage, xmlns: string | undefined, name: string): NonzaHandler | undefined {
    return this.nonzaHandlers.get(`${stage} ${xmlns ?? ''} ${name}`);
  }

  preAuthIq(xmlns: string | undefined, name: string): PreAuthIqHandler | undefined {
    return this.preAuth.get(`${xmlns ?? ''} ${name}`);
  }

  userOp(op: string): UserOpHandler | undefined {
    return this.ops.get(op);
  }

  /** Config sections of the given definitions (for loadConfig and the reference table). */
  static sections(definitions: readonly ModuleDefinition<unknown>[]): ConfigSection[] {
    return definitions.flatMap((d) => (d.config ? [d.config] : []));
  }

  async stop(): Promise<void> {
    for (const { instance } of this.modules) await instance.stop?.();
  }
}

function iqKey(target: string, type: string, xmlns: string, name: string): string {
  return `${target} ${type} ${xmlns} ${name}`;
}

/** A module's options: its validated section, or the section's defaults when the config has none. */
function moduleSection<C>(sections: Readonly<Record<string, unknown>> | undefined, section: ConfigSection<C>): C {
  return section.schema.parse(sections?.[section.key] ?? {});
}

const LT = 0x3c;
/** The kind of a serialized stanza from its first bytes: `<message`, `<presence`, `<iq`. */
export function stanzaKind(data: Uint8Array): StanzaKind {
  let i = 0;
  while (i < data.length && data[i] !== LT) i++;
  switch (data[i + 1]) {
    case 0x6d: return 'message'; // m
    case 0x70: return 'presence'; // p
    case 0x69: return data[i + 2] === 0x71 ? 'iq' : 'other'; // iq
    default: return 'other';
  }
}

const dec = new TextDecoder();
/** Parses delivered bytes once (for session/deliver hooks that need the stanza). */
export function parseDelivered(data: Uint8Array): Element {
  return parseXml(dec.decode(data)) as Element;
}
