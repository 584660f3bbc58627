import http from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "@cashback/runtime";
import { contextFrom, currentTraceId, currentTraceparent, context, inSpan, InMemorySpanExporter, startTelemetry, traceIdOf, validTraceparent } from "../src/index.ts";

const memory = new InMemorySpanExporter();
const telemetry = startTelemetry({ service: "telemetry-test", exporter: memory, env: {} });
const PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({ write: (chunk, _enc, cb) => (lines.push(JSON.parse(String(chunk)) as Record<string, unknown>), cb()) });
  return { lines, logger: createLogger("test", "info", stream) };
}

describe("telemetry", () => {
  it("continues a traceparent: the exported span is its child, the trace id reaches the log lines and the traceparent handed on", async () => {
    const { lines, logger } = capture();
    let handedOn: string | undefined;
    await inSpan(telemetry.tracer, "work", { parent: PARENT }, async () => {
      await new Promise((r) => setTimeout(r, 1)); // across an await
      logger.info({ n: 1 }, "inside");
      handedOn = currentTraceparent();
    });
    logger.info("outside");
    const span = memory.getFinishedSpans().find((s) => s.name === "work")!;
    expect(span.spanContext().traceId).toBe("0af7651916cd43dd8448eb211c80319c");
    expect(span.parentSpanContext?.spanId).toBe("b7ad6b7169203331");
    expect(handedOn).toMatch(new RegExp(`^00-0af7651916cd43dd8448eb211c80319c-${span.spanContext().spanId}-01$`));
    expect(lines[0]).toMatchObject({ trace_id: "0af7651916cd43dd8448eb211c80319c", n: 1, msg: "inside" });
    expect(lines[1]).not.toHaveProperty("trace_id");
    expect(lines[1]).toMatchObject({ msg: "outside" });
  });

  it("starts a new trace for a missing or malformed traceparent, and records a thrown error on the span", async () => {
    for (const bad of [undefined, "", "00-xyz", `00-${"0".repeat(32)}-b7ad6b7169203331-01`, `00-0af7651916cd43dd8448eb211c80319c-${"0".repeat(16)}-01`, `${PARENT}\u0000`]) {
      const id = await inSpan(telemetry.tracer, "fresh", { parent: bad }, async () => currentTraceId());
      expect(id).toMatch(/^[0-9a-f]{32}$/);
      expect(id).not.toBe("0af7651916cd43dd8448eb211c80319c");
    }
    await expect(inSpan(telemetry.tracer, "fails", {}, async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    const failed = memory.getFinishedSpans().find((s) => s.name === "fails")!;
    expect(failed.status.code).toBe(2);
    expect(failed.events.map((e) => e.name)).toContain("exception");
  });

  it("reads and checks traceparents", () => {
    expect(traceIdOf(PARENT)).toBe("0af7651916cd43dd8448eb211c80319c");
    expect(validTraceparent(PARENT.toUpperCase())).toBeUndefined();
    expect(validTraceparent(42)).toBeUndefined();
    expect(currentTraceId(contextFrom(PARENT, context.active()))).toBe("0af7651916cd43dd8448eb211c80319c");
  });

  it("exports nothing unless asked; with OTEL_EXPORTER_OTLP_ENDPOINT, spans are POSTed to <endpoint>/v1/traces (OTLP/HTTP JSON)", async () => {
    expect(startTelemetry({ service: "quiet", env: {} }).exporting).toBe(false);
    expect(startTelemetry({ service: "off", env: { OTEL_SDK_DISABLED: "true", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1" } }).exporting).toBe(false);

    const received: { path: string; body: Buffer }[] = [];
    const collector = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push({ path: req.url ?? "", body: Buffer.concat(chunks) });
        res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = collector.address() as AddressInfo;
      const loud = startTelemetry({ service: "loud", env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}/` } });
      expect(loud.exporting).toBe(true);
      await inSpan(telemetry.tracer, "exported", { parent: PARENT }, async () => {});
      await loud.shutdown(); // flushes the batch
      expect(received.map((r) => r.path)).toContain("/v1/traces");
      // OTLP/JSON: the span, named and in the continued trace.
      const spans = received.flatMap((r) => (JSON.parse(r.body.toString()) as { resourceSpans: { scopeSpans: { spans: { name: string; traceId: string }[] }[] }[] }).resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)));
      expect(spans).toContainEqual(expect.objectContaining({ name: "exported", traceId: "0af7651916cd43dd8448eb211c80319c" }));
    } finally {
      collector.close();
    }
  });
});
