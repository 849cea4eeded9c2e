// Version negotiation: every contract is served in one or more versions ("v1", "v2", …); before any other call a
// client asks the server's Info service which versions it speaks and uses the highest one both sides support, so a
// newer handler can drive an older launcher during an upgrade (and the other way round).

/** The contracts between the services; each is a protobuf package prefix, versioned below it (`.v1`). */
export const CONTRACTS = {
  launcher: 'kubevirt_ts.launcher',
  notify: 'kubevirt_ts.notify',
  handler: 'kubevirt_ts.handler',
} as const;

export type Contract = (typeof CONTRACTS)[keyof typeof CONTRACTS];

/** The versions this build of the package implements, per contract, oldest first. */
export const SUPPORTED_VERSIONS: Readonly<Record<Contract, readonly string[]>> = {
  [CONTRACTS.launcher]: ['v1'],
  [CONTRACTS.notify]: ['v1'],
  [CONTRACTS.handler]: ['v1'],
};

const VERSION = /^v([1-9][0-9]*)$/;

function versionNumber(version: string): number | undefined {
  const match = VERSION.exec(version);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

export class VersionNegotiationError extends Error {
  readonly contract: Contract;
  readonly target: string;
  readonly clientVersions: readonly string[];
  readonly serverVersions: readonly string[];

  constructor(
    contract: Contract,
    target: string,
    clientVersions: readonly string[],
    serverVersions: readonly string[],
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'VersionNegotiationError';
    this.contract = contract;
    this.target = target;
    this.clientVersions = clientVersions;
    this.serverVersions = serverVersions;
  }
}

/**
 * The highest version both lists contain, or undefined. Versions are `v<N>` and compare by N (v10 > v9); a server
 * entry of another form (a future `v3alpha1`) is ignored rather than guessed at.
 */
export function pickVersion(
  clientVersions: readonly string[],
  serverVersions: readonly string[],
): string | undefined {
  for (const version of clientVersions) {
    if (versionNumber(version) === undefined) {
      throw new Error(`client version ${JSON.stringify(version)} is not of the form v<N> (e.g. "v1")`);
    }
  }
  const offered = new Set(serverVersions);
  let best: { version: string; number: number } | undefined;
  for (const version of clientVersions) {
    const number = versionNumber(version);
    if (number === undefined || !offered.has(version)) continue;
    if (best === undefined || number > best.number) best = { version, number };
  }
  return best?.version;
}
