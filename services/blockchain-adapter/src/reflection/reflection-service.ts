// gRPC server reflection (grpc.reflection.v1 and the older v1alpha, which buf curl and grpcurl
// fall back to) so that operators can call the service without a local copy of the schema:
//   buf curl --protocol grpc --http2-prior-knowledge http://host:port/pkg.Service/Method -d '{}'
// Both versions share one implementation: their messages have the same shape.
import { createRegistry, toBinary, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import * as v1 from "@cashback/proto/grpc/reflection/v1";
import * as v1alpha from "@cashback/proto/grpc/reflection/v1alpha";
import { quote } from "../validation.ts";

type Request = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;

/** The `message_response` oneof, as a plain init object valid for both versions. */
type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/**
 * Registers grpc.reflection.v1.ServerReflection and grpc.reflection.v1alpha.ServerReflection on
 * `router`, describing the services declared in `files` (and the reflection services themselves).
 * Types are resolved in `files` and their transitive imports.
 */
export function registerReflection(
  router: ConnectRouter,
  files: DescFile[],
  options: { requestGate?: (ctx: HandlerContext) => void } = {},
): ConnectRouter {
  const answer = createAnswerer(files);
  return router
    .service(v1.ServerReflection, { serverReflectionInfo: (requests) => respond(requests, answer) }, options)
    .service(v1alpha.ServerReflection, { serverReflectionInfo: (requests) => respond(requests, answer) }, options);
}

async function* respond<R extends Request>(requests: AsyncIterable<R>, answer: (request: R) => Answer) {
  for await (const request of requests) {
    yield { validHost: request.host, originalRequest: request, messageResponse: answer(request) };
  }
}

function createAnswerer(files: DescFile[]): (request: Request) => Answer {
  const described = [...files, v1.file_grpc_reflection_v1_reflection, v1alpha.file_grpc_reflection_v1alpha_reflection];
  const services = [...new Set(described.flatMap((file) => file.services.map((s) => s.typeName)))];
  const all = withImports(described);
  const registry = createRegistry(...all);
  const byFilename = new Map([...all].map((file) => [file.proto.name, file]));

  // The file first, then its transitive imports, as serialized FileDescriptorProtos.
  const fileResponse = (file: DescFile): Answer => ({
    case: "fileDescriptorResponse",
    value: { fileDescriptorProto: [...withImports([file])].map((f) => toBinary(FileDescriptorProtoSchema, f.proto)) },
  });
  // gRPC status codes have the same numbers as Connect's Code enum.
  const notFound = (what: string): Answer => ({
    case: "errorResponse",
    value: { errorCode: Code.NotFound, errorMessage: `${what} not found` },
  });

  // Messages, enums, services, extensions, or a method as <service>.<method>.
  const fileContainingSymbol = (name: string): DescFile | undefined => {
    const desc = registry.get(name);
    if (desc) return desc.file;
    const dot = name.lastIndexOf(".");
    const service = registry.getService(name.slice(0, dot));
    return service?.methods.some((m) => m.name === name.slice(dot + 1)) ? service.file : undefined;
  };

  return ({ messageRequest: req }) => {
    switch (req.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: services.map((name) => ({ name })) } };
      case "fileByFilename": {
        const file = byFilename.get(req.value);
        return file ? fileResponse(file) : notFound(`file ${quote(req.value)}`);
      }
      case "fileContainingSymbol": {
        const file = fileContainingSymbol(req.value);
        return file ? fileResponse(file) : notFound(`symbol ${quote(req.value)}`);
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = req.value;
        const message = registry.getMessage(containingType);
        const extension = message && registry.getExtensionFor(message, extensionNumber);
        return extension ? fileResponse(extension.file) : notFound(`extension ${quote(containingType)}:${extensionNumber}`);
      }
      case "allExtensionNumbersOfType": {
        if (!registry.getMessage(req.value)) return notFound(`type ${quote(req.value)}`);
        const extensionNumber = [...registry].flatMap((d) =>
          d.kind === "extension" && d.extendee.typeName === req.value ? [d.number] : [],
        );
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: req.value, extensionNumber } };
      }
      default:
        return { case: "errorResponse", value: { errorCode: Code.InvalidArgument, errorMessage: "empty request" } };
    }
  };
}

/** `roots` and everything they import, transitively; each file before its imports. */
function withImports(roots: DescFile[], into = new Set<DescFile>()): Set<DescFile> {
  for (const file of roots) {
    if (into.has(file)) continue;
    into.add(file);
    withImports(file.dependencies, into);
  }
  return into;
}
