import { beforeEach, describe, expect, it } from "vitest";
import { network } from "hardhat";
import { getAddress, keccak256, parseEther, parseSignature, toHex, zeroAddress } from "viem";

const id = (label: string) => keccak256(toHex(label));

async function deployToken() {
  const connection = await network.create();
  const { viem } = connection;
  const [admin, minter, shopper, other] = (await viem.getWalletClients()) as [WalletClient, WalletClient, WalletClient, WalletClient];
  const publicClient = await viem.getPublicClient();
  const token = await viem.deployContract("CashbackToken", [admin.account.address, minter.account.address]);
  const asMinter = await viem.getContractAt("CashbackToken", token.address, { client: { public: publicClient, wallet: minter } });
  const asOther = await viem.getContractAt("CashbackToken", token.address, { client: { public: publicClient, wallet: other } });
  return { viem, token, asMinter, asOther, publicClient, admin, minter, shopper, other };
}

type Fixture = Awaited<ReturnType<typeof deployToken>>;
type WalletClient = Awaited<ReturnType<Awaited<ReturnType<typeof network.create>>["viem"]["getWalletClients"]>>[number];

describe("CashbackToken", () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await deployToken();
  });

  it("has the expected metadata and roles", async () => {
    expect(await f.token.read.name()).toBe("Cashback Token");
    expect(await f.token.read.symbol()).toBe("CBK");
    expect(await f.token.read.decimals()).toBe(18);
    const minterRole = await f.token.read.MINTER_ROLE();
    expect(await f.token.read.hasRole([minterRole, f.minter.account.address])).toBe(true);
    expect(await f.token.read.hasRole([minterRole, f.admin.account.address])).toBe(false);
  });

  it("mints to a shopper and emits CashbackMinted with the mint id", async () => {
    const amount = parseEther("1.5");
    const hash = await f.asMinter.write.mint([f.shopper.account.address, amount, id("entry-1")]);
    await f.publicClient.waitForTransactionReceipt({ hash });

    expect(await f.token.read.balanceOf([f.shopper.account.address])).toBe(amount);
    expect(await f.token.read.mintIdUsed([id("entry-1")])).toBe(true);
    const events = await f.token.getEvents.CashbackMinted({ mintId: id("entry-1") }, { fromBlock: 0n });
    expect(events).toHaveLength(1);
    expect(events[0]?.args).toEqual({ mintId: id("entry-1"), to: getAddress(f.shopper.account.address), amount });
  });

  it("a replayed mintId mints nothing", async () => {
    const amount = parseEther("2");
    await f.asMinter.write.mint([f.shopper.account.address, amount, id("entry-1")]);

    await expect(f.asMinter.write.mint([f.shopper.account.address, amount, id("entry-1")])).rejects.toThrow(
      /MintIdAlreadyUsed/,
    );
    expect(await f.token.read.balanceOf([f.shopper.account.address])).toBe(amount);
    expect(await f.token.read.totalSupply()).toBe(amount);
  });

  it("a non-minter cannot mint, batch-mint or claw back", async () => {
    const shopper = f.shopper.account.address;
    await expect(f.asOther.write.mint([shopper, 1n, id("x")])).rejects.toThrow(/AccessControlUnauthorizedAccount/);
    await expect(f.asOther.write.mintBatch([[shopper], [1n], [id("x")]])).rejects.toThrow(
      /AccessControlUnauthorizedAccount/,
    );
    await expect(f.asOther.write.clawback([shopper, 1n, id("r")])).rejects.toThrow(/AccessControlUnauthorizedAccount/);
    // The admin administers roles but is not a minter either.
    await expect(f.token.write.mint([shopper, 1n, id("x")])).rejects.toThrow(/AccessControlUnauthorizedAccount/);
    expect(await f.token.read.totalSupply()).toBe(0n);
  });

  it("rejects a zero mint id and a zero amount", async () => {
    const shopper = f.shopper.account.address;
    await expect(f.asMinter.write.mint([shopper, 1n, `0x${"00".repeat(32)}`])).rejects.toThrow(/InvalidId/);
    await expect(f.asMinter.write.mint([shopper, 0n, id("zero")])).rejects.toThrow(/ZeroAmount/);
    await expect(f.asMinter.write.mint([zeroAddress, 1n, id("to-zero")])).rejects.toThrow(/ERC20InvalidReceiver/);
  });

  it("mintBatch mints every new id once and skips ids already used", async () => {
    const [a, b] = [f.shopper.account.address, f.other.account.address];
    await f.asMinter.write.mint([a, 5n, id("old")]);

    const hash = await f.asMinter.write.mintBatch([
      [a, b, a],
      [10n, 20n, 99n],
      [id("n1"), id("n2"), id("old")],
    ]);
    await f.publicClient.waitForTransactionReceipt({ hash });

    expect(await f.token.read.balanceOf([a])).toBe(15n);
    expect(await f.token.read.balanceOf([b])).toBe(20n);
    const minted = await f.token.getEvents.CashbackMinted({}, { fromBlock: 0n });
    expect(minted.map((e) => e.args.mintId)).toEqual([id("old"), id("n1"), id("n2")]);
    const skipped = await f.token.getEvents.MintSkipped({}, { fromBlock: 0n });
    expect(skipped.map((e) => e.args.mintId)).toEqual([id("old")]);

    // Replaying the whole batch changes nothing.
    await f.asMinter.write.mintBatch([[a, b], [10n, 20n], [id("n1"), id("n2")]]);
    expect(await f.token.read.totalSupply()).toBe(35n);
  });

  it("mintBatch rejects arrays of different lengths", async () => {
    await expect(f.asMinter.write.mintBatch([[f.shopper.account.address], [1n, 2n], [id("a")]])).rejects.toThrow(
      /LengthMismatch/,
    );
  });

  it("claws back once per refId", async () => {
    const shopper = f.shopper.account.address;
    await f.asMinter.write.mint([shopper, 100n, id("entry")]);
    await f.asMinter.write.clawback([shopper, 40n, id("refund-1")]);
    expect(await f.token.read.balanceOf([shopper])).toBe(60n);

    await expect(f.asMinter.write.clawback([shopper, 40n, id("refund-1")])).rejects.toThrow(/ClawbackAlreadyApplied/);
    expect(await f.token.read.balanceOf([shopper])).toBe(60n);
    await expect(f.asMinter.write.clawback([shopper, 61n, id("refund-2")])).rejects.toThrow(
      /ERC20InsufficientBalance/,
    );
    const events = await f.token.getEvents.CashbackClawedBack({ refId: id("refund-1") }, { fromBlock: 0n });
    expect(events[0]?.args.amount).toBe(40n);
  });

  it("pause stops mints and transfers until unpaused; only the pauser may pause", async () => {
    const shopper = f.shopper.account.address;
    await f.asMinter.write.mint([shopper, 10n, id("a")]);
    await expect(f.asOther.write.pause()).rejects.toThrow(/AccessControlUnauthorizedAccount/);

    await f.token.write.pause();
    await expect(f.asMinter.write.mint([shopper, 1n, id("b")])).rejects.toThrow(/EnforcedPause/);
    const asShopper = await f.viem.getContractAt("CashbackToken", f.token.address, { client: { public: f.publicClient, wallet: f.shopper } });
    await expect(asShopper.write.transfer([f.other.account.address, 1n])).rejects.toThrow(/EnforcedPause/);

    await f.token.write.unpause();
    await asShopper.write.transfer([f.other.account.address, 1n]);
    expect(await f.token.read.balanceOf([f.other.account.address])).toBe(1n);
  });

  it("permit lets a shopper approve by signature", async () => {
    const owner = f.shopper.account.address;
    const spender = f.other.account.address;
    const chainId = await f.publicClient.getChainId();
    const deadline = BigInt(Math.floor(Date.now() / 1000) + 3600);
    const nonce = await f.token.read.nonces([owner]);
    const signature = await f.shopper.signTypedData({
      domain: { name: "Cashback Token", version: "1", chainId, verifyingContract: f.token.address },
      types: {
        Permit: [
          { name: "owner", type: "address" },
          { name: "spender", type: "address" },
          { name: "value", type: "uint256" },
          { name: "nonce", type: "uint256" },
          { name: "deadline", type: "uint256" },
        ],
      },
      primaryType: "Permit",
      message: { owner, spender, value: 7n, nonce, deadline },
    });
    const { v, r, s } = parseSignature(signature);

    // Anyone may submit the signed permit; here the spender does.
    await f.asOther.write.permit([owner, spender, 7n, deadline, Number(v), r, s]);
    expect(await f.token.read.allowance([owner, spender])).toBe(7n);
    expect(await f.token.read.nonces([owner])).toBe(nonce + 1n);
    // The same signature can not be used twice.
    await expect(f.asOther.write.permit([owner, spender, 7n, deadline, Number(v), r, s])).rejects.toThrow(
      /ERC2612InvalidSigner/,
    );
  });
});
