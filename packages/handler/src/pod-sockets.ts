// Where a launcher pod's sockets folder is, and a path to it short enough for unix sockets. The kubelet keeps a
// pod's emptyDirs under <pods>/<podUID>/volumes/kubernetes.io~empty-dir/<volume>/ (DESIGN.md §4a); with the /pods
// mount of the DaemonSet the socket paths fit in the 107 bytes Linux allows, but a deeper pods folder (a devcluster
// node root) does not. chdir is no way out here: the working directory is one per process, and grpc-js connects
// (and reconnects) to many launchers at times of its own choosing. So a longer folder is reached through a symlink
// under the handler's state dir: connect() and bind() follow symlinks in the directory part of a socket path, and
// only the length of the path string counts.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UNIX_PATH_MAX } from '@kubevirt-ts/proto';
import { SOCKETS, SOCKETS_VOLUME, emptyDirPath } from './constants.ts';

/** The longest file name the handler uses in a sockets folder. */
const LONGEST_SOCKET_NAME = Math.max(...Object.values(SOCKETS).map((n) => n.length));

export class PodSockets {
  readonly podsDir: string;
  readonly linkDir: string;

  /** `linkDir` holds the short symlinks; it must itself be short (checked when a link is needed). */
  constructor(podsDir: string, linkDir: string) {
    this.podsDir = podsDir;
    this.linkDir = linkDir;
  }

  /** The real sockets folder of a launcher pod. */
  socketsDir(podUid: string): string {
    return join(this.podsDir, emptyDirPath(podUid, SOCKETS_VOLUME));
  }

  /** Whether the pod's sockets folder exists (the kubelet removes it with the pod). */
  async exists(podUid: string): Promise<boolean> {
    try {
      return (await stat(this.socketsDir(podUid))).isDirectory();
    } catch {
      return false;
    }
  }

  /**
   * A folder path that reaches the pod's sockets folder and leaves room for every socket name within the unix
   * socket limit: the real path when it is short enough, else a symlink made under linkDir.
   */
  async reachableDir(podUid: string): Promise<string> {
    return shortDir(this.socketsDir(podUid), join(this.linkDir, podUid), LONGEST_SOCKET_NAME);
  }

  /** Removes the symlink of a pod, if one was made. */
  async release(podUid: string): Promise<void> {
    const link = join(this.linkDir, podUid);
    try {
      if ((await lstat(link)).isSymbolicLink()) await rm(link);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/**
 * `realDir` when a socket named up to `longestName` bytes fits in it, else `link` (a symlink to realDir, made or
 * corrected here). Throws when neither is short enough, naming the flags that shorten them.
 */
export async function shortDir(realDir: string, link: string, longestName: number): Promise<string> {
  const fits = (dir: string): boolean => Buffer.byteLength(dir) + 1 + longestName <= UNIX_PATH_MAX;
  if (fits(realDir)) return realDir;
  if (!fits(link)) {
    throw new Error(
      `neither the folder ${realDir} nor a link to it at ${link} is short enough for unix sockets ` +
        `(${UNIX_PATH_MAX} bytes); choose a shorter --state-dir, --pods-dir or --device-plugins-dir`,
    );
  }
  await mkdir(dirname(link), { recursive: true, mode: 0o700 });
  if ((await readlink(link).catch(() => undefined)) === realDir) return link;
  const tmp = `${link}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await rm(tmp, { force: true });
  await symlink(realDir, tmp);
  await rename(tmp, link);
  return link;
}
