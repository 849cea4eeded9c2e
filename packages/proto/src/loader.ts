// Loads the .proto contracts at run time with LOADER_OPTIONS, the same options the generated types were made with.
// The .proto files ship in the package's proto/ folder, found relative to this module: src/loader.ts and
// dist/loader.js both sit one level below the package root.
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { ProtoGrpcType as HandlerProto } from './gen/handler.ts';
import type { ProtoGrpcType as InfoProto } from './gen/info.ts';
import type { ProtoGrpcType as LauncherProto } from './gen/launcher.ts';
import type { ProtoGrpcType as NotifyProto } from './gen/notify.ts';
import { LOADER_OPTIONS, PROTO_FILES } from './options.ts';

/** Absolute path of the folder holding the .proto files (the include root). */
export const PROTO_ROOT: string = fileURLToPath(new URL('../proto/', import.meta.url));

/** Every loaded contract: `contracts.kubevirt_ts.launcher.v1.Launcher` is the typed client constructor, its `.service` the definition. */
export type Contracts = InfoProto & LauncherProto & NotifyProto & HandlerProto;

let loaded: Contracts | undefined;

/** The contracts, loaded once per process. Fails with the file name when a .proto file is missing or invalid. */
export function loadContracts(): Contracts {
  if (loaded === undefined) {
    let definition;
    try {
      definition = loadSync([...PROTO_FILES], { ...LOADER_OPTIONS, includeDirs: [PROTO_ROOT] });
    } catch (error) {
      throw new Error(
        `cannot load the gRPC contracts from ${PROTO_ROOT}: ${error instanceof Error ? error.message : String(error)}; ` +
          'the proto/ folder must ship with @kubevirt-ts/proto (package.json "files")',
        { cause: error },
      );
    }
    // The cast is what proto-loader-gen-types is for: the generated ProtoGrpcType describes exactly this object,
    // as long as the loader options are the ones the types were generated with (LOADER_OPTIONS).
    loaded = loadPackageDefinition(definition) as unknown as Contracts;
  }
  return loaded;
}
