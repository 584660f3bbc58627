// Hardhat's well-known development accounts (mnemonic "test test ... junk"). Public knowledge:
// fine for the local chain (id 31337), never for a real one. Override with env vars anywhere else.
export const LOCAL_CHAIN_ID = 31337;
export const DEV_DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"; // account #0: admin
export const DEV_ADAPTER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"; // account #1: minter
