// Server reflection, checked with the real `buf curl` client: no --schema flag anywhere.
import { execFile } from "node:child_process";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, createRouterTransport, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { BlockchainService, file_cashback_blockchain_v1_blockchain } from "@cashback/proto/blockchain/v1";
import { ServerReflection, ServerReflectionRequestSchema } from "@cashback/proto/grpc/reflection/v1";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerReflection } from "../src/reflection/reflection-service.ts";

const buf = fileURLToPath(new URL("../../../node_modules/.bin/buf", import.meta.url));
const run = promisify(execFile);
const TOKEN = "test-token";

/** Reflection requests the server received: which service, and which Authorization header. */
const reflectionCalls: { path: string; auth: string | null }[] = [];
const reflectionAuth = (): (string | null)[] => reflectionCalls.map((c) => c.auth);

function routes(router: ConnectRouter): void {
  router.service(BlockchainService, {
    getBalance(req, ctx) {
      if (ctx.requestHeader.get("authorization") !== `Bearer ${TOKEN}`) {
        throw new ConnectError("missing bearer token", Code.Unauthenticated);
      }
      return { address: req.address, balanceWei: "42", blockNumber: 7n };
    },
  });
  registerReflection(router, [file_cashback_blockchain_v1_blockchain]);
}

let server: http2.Http2Server;
let url: string;

beforeAll(async () => {
  const handler = connectNodeAdapter({ routes });
  server = http2.createServer((req, res) => {
    if (req.url.startsWith("/grpc.reflection.")) {
      reflectionCalls.push({ path: req.url, auth: req.headers.authorization ?? null });
    }
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
});

async function bufCurl(...args: string[]): Promise<string> {
  const { stdout } = await run(buf, ["curl", "--http2-prior-knowledge", ...args], { timeout: 30_000 });
  return stdout;
}

describe("gRPC server reflection", () => {
  it("lets buf curl list the methods", async () => {
    const methods = (await bufCurl("--list-methods", url)).trim().split("\n");
    expect(methods.filter((m) => m.startsWith("cashback.")).sort()).toEqual([
      "cashback.blockchain.v1.BlockchainService/Clawback",
      "cashback.blockchain.v1.BlockchainService/GetBalance",
      "cashback.blockchain.v1.BlockchainService/GetTransaction",
      "cashback.blockchain.v1.BlockchainService/MintBatch",
      "cashback.blockchain.v1.BlockchainService/MintToken",
    ]);
  });

  it("lists the reflection services too", async () => {
    const services = (await bufCurl("--list-services", url)).trim().split("\n").sort();
    expect(services).toEqual([
      "cashback.blockchain.v1.BlockchainService",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
    ]);
  });

  it("lets buf curl call a method over gRPC without --schema, reflection unauthenticated", async () => {
    reflectionCalls.length = 0;
    const out = await bufCurl(
      "--protocol", "grpc",
      "-H", `Authorization: Bearer ${TOKEN}`,
      `${url}/cashback.blockchain.v1.BlockchainService/GetBalance`,
      "-d", '{"address":"0xabc"}',
    );
    expect(JSON.parse(out)).toEqual({ address: "0xabc", balanceWei: "42", blockNumber: "7" });
    // -H headers are not forwarded to reflection unless --reflect-header is given.
    expect(reflectionAuth().length).toBeGreaterThan(0);
    expect(reflectionAuth().every((h) => h === null)).toBe(true);
  });

  it("forwards -H headers to reflection with --reflect-header '*'", async () => {
    reflectionCalls.length = 0;
    await bufCurl(
      "--protocol", "grpc",
      "-H", `Authorization: Bearer ${TOKEN}`,
      "--reflect-header", "*",
      `${url}/cashback.blockchain.v1.BlockchainService/GetBalance`,
      "-d", '{"address":"0xabc"}',
    );
    expect(reflectionAuth()).toContain(`Bearer ${TOKEN}`);
  });

  it("serves v1alpha too", async () => {
    reflectionCalls.length = 0;
    const out = await bufCurl("--reflect-protocol", "grpc-v1alpha", "--list-methods", url);
    expect(out).toContain("cashback.blockchain.v1.BlockchainService/GetBalance");
    expect(reflectionCalls.map((c) => c.path)).toEqual(["/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"]);
  });

  it("answers an unknown symbol with NOT_FOUND", async () => {
    const err = await bufCurl(`${url}/cashback.blockchain.v1.Nope/Missing`).then(
      () => "",
      (e: { stderr: string }) => e.stderr,
    );
    expect(err).toContain('failed to find service named "cashback.blockchain.v1.Nope"');
  });
});

describe("reflection answers (in memory)", () => {
  const client = createClient(ServerReflection, createRouterTransport(routes));
  async function ask(...messageRequests: MessageInitShape<typeof ServerReflectionRequestSchema>["messageRequest"][]) {
    async function* requests() {
      for (const messageRequest of messageRequests) yield { messageRequest };
    }
    const answers = [];
    for await (const res of client.serverReflectionInfo(requests())) answers.push(res.messageResponse);
    return answers;
  }
  const fileNames = (answer: Awaited<ReturnType<typeof ask>>[number]) =>
    answer.case === "fileDescriptorResponse"
      ? answer.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name)
      : answer;

  it("finds files by symbol (service, method, message, enum) and by name", async () => {
    const answers = await ask(
      { case: "fileContainingSymbol", value: "cashback.blockchain.v1.BlockchainService" },
      { case: "fileContainingSymbol", value: "cashback.blockchain.v1.BlockchainService.MintToken" },
      { case: "fileContainingSymbol", value: "cashback.blockchain.v1.ErrorDetail" },
      { case: "fileContainingSymbol", value: "cashback.blockchain.v1.TransactionStatus" },
      { case: "fileByFilename", value: "cashback/blockchain/v1/blockchain.proto" },
      { case: "fileContainingSymbol", value: "grpc.reflection.v1.ServerReflection" },
    );
    expect(answers.map(fileNames)).toEqual([
      ...Array(5).fill(["cashback/blockchain/v1/blockchain.proto"]),
      ["grpc/reflection/v1/reflection.proto"],
    ]);
  });

  it("answers unknown names and extension queries with NOT_FOUND", async () => {
    const answers = await ask(
      { case: "fileContainingSymbol", value: "cashback.blockchain.v1.Nope" },
      { case: "fileByFilename", value: "nope.proto" },
      { case: "fileContainingExtension", value: { containingType: "cashback.blockchain.v1.ErrorDetail", extensionNumber: 100 } },
      { case: "allExtensionNumbersOfType", value: "cashback.blockchain.v1.Nope" },
    );
    expect(answers.map((a) => a.case === "errorResponse" && a.value.errorCode)).toEqual(Array(4).fill(Code.NotFound));
  });

  it("reports no extension numbers for a known message", async () => {
    const [answer] = await ask({ case: "allExtensionNumbersOfType", value: "cashback.blockchain.v1.ErrorDetail" });
    expect(answer).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "cashback.blockchain.v1.ErrorDetail", extensionNumber: [] },
    });
  });
});
