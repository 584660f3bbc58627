export { startAdapterProcess, TEST_ADAPTER_TOKEN, type AdapterProcess } from "./adapter-process.ts";
export { startTestChain, type TestChain } from "./chain.ts";
export { startNatsServer, type NatsServer } from "./nats-server.ts";
export { freePort, waitForPort } from "./ports.ts";
export { httpOk, repoRoot, serviceProcess, type ServiceProcess } from "./service-process.ts";
export { startTcpProxy, type ProxyMode, type TcpProxy } from "./tcp-proxy.ts";
export { postgresBinDir, startPgCluster, type PgCluster } from "./pg-cluster.ts";
export { startChainProcess, type ChainProcess } from "./chain-process.ts";
