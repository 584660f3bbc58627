/**
 * Gas used by CashbackToken's state-changing calls, measured from real receipts on Hardhat's
 * in-process chain (EVM "cancun", optimizer on, as in hardhat.config.ts).
 *
 *   npm run bench:gas
 *
 * Prints an aligned table and, last, one line `BENCH_GAS {json}` for CI logs.
 */
import { network } from "hardhat";
import { keccak256, toHex, type Address, type Hash } from "viem";
import { privateKeyToAccount, generatePrivateKey } from "viem/accounts";
import { formatTable, thousands } from "./support/table.ts";

const id = (label: string) => keccak256(toHex(label));
const freshAddress = (): Address => privateKeyToAccount(generatePrivateKey()).address;
const AMOUNT = 10n ** 18n;

interface Row {
  operation: string;
  items: number;
  gasUsed: bigint;
  gasPerItem: bigint;
  note: string;
}

async function main() {
  const connection = await network.create();
  try {
    const { viem } = connection;
    const [admin, minter, holder] = await viem.getWalletClients();
    if (!admin || !minter || !holder) throw new Error("the in-process network needs at least 3 accounts");
    const publicClient = await viem.getPublicClient();
    const hardfork = "hardfork" in connection.networkConfig ? String(connection.networkConfig.hardfork) : "unknown";
    const token = await viem.deployContract("CashbackToken", [admin.account.address, minter.account.address]);
    const asMinter = await viem.getContractAt("CashbackToken", token.address, { client: { public: publicClient, wallet: minter } });
    const asHolder = await viem.getContractAt("CashbackToken", token.address, { client: { public: publicClient, wallet: holder } });

    const rows: Row[] = [];
    let seq = 0;
    const nextId = () => id(`bench-gas-${seq++}`);

    async function measure(operation: string, items: number, note: string, send: () => Promise<Hash>): Promise<bigint> {
      const hash = await send();
      const receipt = await publicClient.waitForTransactionReceipt({ hash });
      if (receipt.status !== "success") throw new Error(`${operation}: transaction reverted`);
      rows.push({ operation, items, gasUsed: receipt.gasUsed, gasPerItem: receipt.gasUsed / BigInt(items), note });
      return receipt.gasUsed;
    }

    const holderAddr = holder.account.address;

    // The very first mint also takes totalSupply from zero to non-zero (a 20k-gas SSTORE):
    // a one-off, shown apart so the rows below describe the steady state.
    await measure("mint", 1, "first mint ever (totalSupply 0 -> >0), fresh recipient", () =>
      asMinter.write.mint([holderAddr, AMOUNT * 1000n, nextId()]),
    );
    const otherHolder = freshAddress();
    await measure("mint", 1, "fresh recipient (balance 0 -> >0)", () => asMinter.write.mint([otherHolder, AMOUNT, nextId()]));
    await measure("mint", 1, "recipient already holds tokens", () => asMinter.write.mint([holderAddr, AMOUNT, nextId()]));

    for (const n of [1, 10, 100]) {
      const fresh = Array.from({ length: n }, freshAddress);
      await measure("mintBatch", n, "fresh recipients, one each", () =>
        asMinter.write.mintBatch([fresh, fresh.map(() => AMOUNT), fresh.map(() => nextId())]),
      );
    }
    for (const n of [1, 10, 100]) {
      const holders = Array.from({ length: n }, () => holderAddr);
      await measure("mintBatch", n, "all to one existing holder", () =>
        asMinter.write.mintBatch([holders, holders.map(() => AMOUNT), holders.map(() => nextId())]),
      );
    }

    await measure("clawback", 1, "partial burn from a holder", () => asMinter.write.clawback([holderAddr, AMOUNT, nextId()]));
    await measure("transfer", 1, "holder -> fresh address (reference)", () => asHolder.write.transfer([freshAddress(), AMOUNT]));
    await measure("transfer", 1, "holder -> existing holder (reference)", () => asHolder.write.transfer([otherHolder, AMOUNT]));

    // Sanity: supply adds up (minted - clawed back).
    const minted = AMOUNT * 1000n + AMOUNT * 2n + AMOUNT * 111n * 2n;
    const supply = await token.read.totalSupply();
    if (supply !== minted - AMOUNT) throw new Error(`totalSupply ${supply} != expected ${minted - AMOUNT}`);

    printTable(rows, hardfork);
    const json = {
      bench: "gas",
      date: new Date().toISOString(),
      hardfork,
      rows: rows.map((r) => ({ operation: r.operation, items: r.items, gasUsed: Number(r.gasUsed), gasPerItem: Number(r.gasPerItem), note: r.note })),
    };
    console.log(`BENCH_GAS ${JSON.stringify(json)}`);
  } finally {
    await connection.close();
  }
}

function printTable(rows: Row[], hardfork: string) {
  const header = ["operation", "items", "gas used", "gas / item", "note"];
  const cells = rows.map((r) => [r.operation, String(r.items), thousands(r.gasUsed), thousands(r.gasPerItem), r.note]);
  console.log(`\nCashbackToken gas on Hardhat's in-process chain (hardfork ${hardfork}); receipt gasUsed, incl. 21,000 base + calldata\n`);
  console.log(formatTable(header, cells, new Set([1, 2, 3])));
  console.log();
}

await main();
