// Checkpoints on the node (KubeVirt's ghost records): one small JSON file per VMI whose launcher this handler has
// synced, written before the first Sync and removed once the domain is gone. A restarted handler reads them to
// find every launcher it was responsible for, even when the VMI has disappeared from the API server meanwhile, and
// asks each launcher for its domain; running guests are never touched by a restart.
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface LauncherRecord {
  namespace: string;
  name: string;
  uid: string;
  /** The launcher pod's UID: its folders are under <pods dir>/<podUid>/. */
  podUid: string;
}

const UID = /^[0-9a-zA-Z-]{1,64}$/;

function isRecord(v: unknown): v is LauncherRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.namespace === 'string' &&
    typeof r.name === 'string' &&
    typeof r.uid === 'string' &&
    UID.test(r.uid) &&
    typeof r.podUid === 'string' &&
    UID.test(r.podUid)
  );
}

export interface CheckpointLoad {
  records: LauncherRecord[];
  /** Files that could not be read or parsed, with why; they are left in place for a human to look at. */
  invalid: { file: string; error: string }[];
}

export class CheckpointStore {
  readonly dir: string;

  /** `stateDir`/ghost-records holds the files. */
  constructor(stateDir: string) {
    this.dir = join(stateDir, 'ghost-records');
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  #file(uid: string): string {
    if (!UID.test(uid))
      throw new Error(`refusing a checkpoint for the malformed VMI uid ${JSON.stringify(uid)}`);
    return join(this.dir, `${uid}.json`);
  }

  /** Writes (or replaces) the record atomically: a crash leaves the old file or the new one, never half of one. */
  async put(record: LauncherRecord): Promise<void> {
    if (!isRecord(record)) throw new Error(`refusing an incomplete checkpoint: ${JSON.stringify(record)}`);
    const file = this.#file(record.uid);
    const tmp = `${file}.tmp`;
    await writeFile(tmp, `${JSON.stringify(record)}\n`, { mode: 0o600 });
    await rename(tmp, file);
  }

  async remove(uid: string): Promise<void> {
    await rm(this.#file(uid), { force: true });
  }

  async load(): Promise<CheckpointLoad> {
    const out: CheckpointLoad = { records: [], invalid: [] };
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
      throw err;
    }
    for (const name of names.sort()) {
      if (!name.endsWith('.json')) continue;
      const file = join(this.dir, name);
      try {
        const parsed = JSON.parse(await readFile(file, 'utf8')) as unknown;
        if (!isRecord(parsed) || `${parsed.uid}.json` !== name) {
          out.invalid.push({ file, error: 'not a launcher record, or named after another uid' });
          continue;
        }
        out.records.push(parsed);
      } catch (err) {
        out.invalid.push({ file, error: (err as Error).message });
      }
    }
    return out;
  }
}
