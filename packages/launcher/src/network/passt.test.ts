// passt's command line: the ports KubeVirt's converter forwards, and the paths and user the launcher gives passt.
import { describe, expect, it } from 'vitest';
import { passtArgs, passtFailureDetail, passtPaths, passtPortArgs } from './passt.ts';

describe('passtPortArgs', () => {
  it('forwards every TCP and UDP port when the interface lists none', () => {
    expect(passtPortArgs({})).toEqual(['--tcp-ports', 'all', '--udp-ports', 'all']);
    expect(passtPortArgs({ ports: [] })).toEqual(['--tcp-ports', 'all', '--udp-ports', 'all']);
  });

  it('forwards only the listed ports, by protocol (TCP when none is named), and no other protocol', () => {
    expect(passtPortArgs({ ports: [{ port: 80 }, { port: 443, protocol: 'TCP' }, { port: 80 }] })).toEqual([
      '--tcp-ports',
      '80,443',
      '--udp-ports',
      'none',
    ]);
    expect(passtPortArgs({ ports: [{ port: 53, protocol: 'UDP' }] })).toEqual([
      '--tcp-ports',
      'none',
      '--udp-ports',
      '53',
    ]);
  });
});

describe('passtArgs', () => {
  it('runs passt in the foreground, sandboxed without a user namespace, with its socket, log and pid file in the private folder', () => {
    const paths = passtPaths('/var/run/kubevirt-private');
    expect(paths.socket).toBe('/var/run/kubevirt-private/passt/passt.sock');
    expect(passtArgs({ ports: [{ port: 80 }] }, paths)).toEqual([
      '--foreground',
      '--netns-only',
      '--runas',
      '0:0',
      '--socket',
      '/var/run/kubevirt-private/passt/passt.sock',
      '--log-file',
      '/var/run/kubevirt-private/passt/passt.log',
      '--pid',
      '/var/run/kubevirt-private/passt/passt.pid',
      '--interface',
      'eth0',
      '--tcp-ports',
      '80',
      '--udp-ports',
      'none',
    ]);
  });
});

describe('passtFailureDetail', () => {
  it('reads the same for the same failure, whatever the elapsed time passt stamps on its lines', () => {
    const first = passtFailureDetail(
      ["Couldn't create user namespace: Operation not permitted"],
      '0.0012: UNIX domain socket bound at /x/passt.socket\n0.0031: Failed to sandbox process, exiting\n',
    );
    const second = passtFailureDetail(
      ["Couldn't create user namespace: Operation not permitted"],
      '0.0009: UNIX domain socket bound at /x/passt.socket\n0.0047: Failed to sandbox process, exiting\n',
    );
    expect(first).toBe(second);
    expect(first).toBe(
      "Couldn't create user namespace: Operation not permitted | UNIX domain socket bound at /x/passt.socket | Failed to sandbox process, exiting",
    );
  });

  it('keeps the last three log lines and skips empty ones', () => {
    expect(passtFailureDetail([], '1.0: a\n2.0: b\n3.0: c\n4.0: d\n')).toBe('b | c | d');
    expect(passtFailureDetail(['  ', 'x'], '')).toBe('x');
  });
});
