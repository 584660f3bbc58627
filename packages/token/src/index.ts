export { cashbackTokenAbi } from "./generated/abi.ts";
export { deploymentPath, deploymentsDir, readDeployment, repoRoot, type TokenDeployment } from "./deployment.ts";
export { DEV_ADAPTER_KEY, DEV_DEPLOYER_KEY, LOCAL_CHAIN_ID } from "./dev-accounts.ts";
