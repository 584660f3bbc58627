export { cashbackTokenAbi } from "./generated/abi.ts";
export { deploymentPath, deploymentsDir, readDeployment, repoRoot, type TokenDeployment } from "./deployment.ts";
