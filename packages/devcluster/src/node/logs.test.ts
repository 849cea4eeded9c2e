import { describe, expect, it } from 'vitest';
import { parsePodLogTarget } from './logs.ts';

describe('parsePodLogTarget', () => {
  it('reads pod/NAMESPACE/NAME[/CONTAINER] and pod/NAME', () => {
    expect(parsePodLogTarget('pod/ns/web/c')).toEqual({ namespace: 'ns', name: 'web', container: 'c' });
    expect(parsePodLogTarget('pod/ns/web')).toEqual({ namespace: 'ns', name: 'web' });
    expect(parsePodLogTarget('pod/web')).toEqual({ namespace: 'default', name: 'web' });
    expect(parsePodLogTarget('kube-apiserver')).toBeUndefined();
    expect(parsePodLogTarget('pod/a/b/c/d')).toBeUndefined();
  });
});
