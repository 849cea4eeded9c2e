import { describe, expect, it } from 'vitest';
import { hostSubmounts } from './runtime.ts';

describe('hostSubmounts', () => {
  it('lists the outermost host file systems besides / and the kernel’s and runtime’s own', () => {
    const mountinfo = [
      '22 27 0:21 / /proc rw - proc proc rw',
      '27 1 254:0 / / rw - ext4 /dev/vda rw',
      '28 27 0:25 / /home rw - ext4 /dev/vdb rw',
      '29 28 0:26 / /home/user/data rw - ext4 /dev/vdc rw',
      '30 27 0:27 / /run/netns rw - tmpfs tmpfs rw',
      '31 27 0:28 / /mnt/with\\040space rw - tmpfs tmpfs rw',
    ].join('\n');
    expect(hostSubmounts(mountinfo)).toEqual(['/home', '/mnt/with space']);
  });
});
