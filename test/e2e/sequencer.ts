// The order of the integration run: every package's suites first (as vitest's own sequencer orders them), then
// the end-to-end files by name (01-lifecycle … 09-faults). The e2e suite installs the chart, whose controllers and
// cluster-wide webhooks would act on the objects of package suites that run a service of their own; and its
// fault tests come last so that a failure there cannot take the cluster down under the lifecycle tests.
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const E2E = /[/\\]test[/\\]e2e[/\\]/;

export default class IntegrationSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const packages = await super.sort(files.filter((f) => !E2E.test(f.moduleId)));
    const e2e = files
      .filter((f) => E2E.test(f.moduleId))
      .sort((a, b) => a.moduleId.localeCompare(b.moduleId));
    return [...packages, ...e2e];
  }
}
