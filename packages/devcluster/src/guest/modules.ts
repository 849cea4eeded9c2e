// Load order for kernel modules: busybox insmod loads one file and does not resolve dependencies, and Debian's
// kernel package ships no modules.dep, so the build orders the modules itself from each one's `depends`.

/** Every module after the modules it depends on; ties keep name order so the result is stable. */
export function orderModules(deps: ReadonlyMap<string, readonly string[]>): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]): void => {
    const seen = state.get(name);
    if (seen === 'done') return;
    if (seen === 'visiting')
      throw new Error(`kernel modules depend on each other in a cycle: ${[...path, name].join(' -> ')}`);
    const own = deps.get(name);
    if (!own)
      throw new Error(`kernel module ${name} is needed by ${path.at(-1) ?? 'the guest'} but was not found`);
    state.set(name, 'visiting');
    for (const dep of [...own].sort()) visit(dep, [...path, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of [...deps.keys()].sort()) visit(name, []);
  return order;
}
