/// <reference lib="dom" />
import { getAddress, isAddressEqual, type Address } from "viem";
import { createSiweMessage } from "viem/siwe";
import { api, ApiError, type Session } from "./api.ts";
import { formatToken, historyRow, isPending, type History, type HistoryEntry, type PageConfig } from "./format.ts";
import { errorCode, UNRECOGNIZED_CHAIN, USER_REJECTED, Wallet } from "./wallet.ts";

// The shopper page: connect the injected wallet, sign in with Ethereum, set the wallet up for our
// chain and CBK, and show the balance (from the chain, through the wallet) and the cashback
// history (from the API), polling while a mint is pending. Plain DOM: five buttons and a table.

const FAST_POLL_MS = 1_500; // while something waits for the chain
const SLOW_POLL_MS = 5_000; // new purchases show up within this

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  status: $("status"),
  signIn: $<HTMLButtonElement>("sign-in"),
  setUp: $<HTMLButtonElement>("set-up"),
  signOut: $<HTMLButtonElement>("sign-out"),
  wallet: $("wallet"),
  account: $("account"),
  balance: $("balance"),
  balanceNote: $("balance-note"),
  pending: $("pending"),
  historySection: $("history-section"),
  rows: $("history-rows"),
  empty: $("history-empty"),
  more: $<HTMLButtonElement>("more"),
};

let config: PageConfig;
let wallet: Wallet | undefined;
let session: Session | null = null;
let entries: HistoryEntry[] = [];
let nextCursor: string | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;
let generation = 0; // bumped on every sign-in/out: answers for an older session are dropped

function say(text: string, kind: "info" | "error" | "ok" = "info") {
  ui.status.textContent = text;
  ui.status.dataset.kind = kind;
}

function explain(err: unknown): string {
  if (errorCode(err) === USER_REJECTED) return "You declined the request in your wallet.";
  if (err instanceof ApiError) return err.message;
  return (err as Error)?.message ?? String(err);
}

async function busy(button: HTMLButtonElement, work: () => Promise<void>) {
  button.disabled = true;
  try {
    await work();
  } catch (err) {
    say(explain(err), "error");
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ sign in / out

async function signIn() {
  if (!wallet) return;
  say("Connecting to your wallet…");
  const address = await wallet.connect();
  // No expiration time in the message: the API would end the session with it. The nonce is good
  // for a few minutes only, which bounds when the message can be used anyway.
  const { nonce, statement } = await api.nonce();
  const message = createSiweMessage({
    address,
    chainId: config.chain.id,
    domain: location.host,
    uri: location.origin,
    version: "1",
    nonce,
    issuedAt: new Date(),
    statement,
  });
  say("Sign the message in your wallet (it costs nothing and sends no transaction).");
  const signature = await wallet.signMessage(address, message);
  showSignedIn(await api.signIn(message, signature));
  say(`Signed in as ${address}.`, "ok");
}

async function signOut(note?: string) {
  generation++;
  clearTimeout(timer);
  session = null;
  entries = [];
  nextCursor = null;
  render();
  if (note) say(note);
  await api.signOut().catch(() => {});
}

function showSignedIn(s: Session) {
  generation++;
  session = s;
  entries = [];
  nextCursor = null;
  render();
  void refresh();
}

/** Another account in the wallet never sees this one's history: the session ends with the switch. */
async function onAccountsChanged(accounts: string[]) {
  if (!session) return;
  const now = accounts[0];
  if (now && isAddressEqual(getAddress(now), session.wallet_address as Address)) return;
  await signOut(now ? `Your wallet switched to ${getAddress(now)}: sign in again to see its cashback.` : "Your wallet disconnected: signed out.");
}

// ------------------------------------------------------------------ wallet set-up

async function setUpWallet() {
  if (!wallet) return;
  say(`Adding ${config.chain.name} and ${config.token?.symbol ?? "the token"} to your wallet…`);
  try {
    const { switched, watched } = await wallet.setUp(config);
    const parts = [`${config.chain.name} (chain ${config.chain.id}) added${switched ? " and selected" : ""}`];
    if (config.token) parts.push(watched ? `${config.token.symbol} added to your tokens` : `${config.token.symbol} not added`);
    say(`${parts.join("; ")}.`, "ok");
  } catch (err) {
    if (errorCode(err) === UNRECOGNIZED_CHAIN) throw new Error(`Your wallet does not know chain ${config.chain.id}; add it in the wallet's network settings with RPC URL ${config.chain.rpc_url}.`);
    throw err;
  }
  if (session) void refresh();
}

// ------------------------------------------------------------------ balance and history

async function refresh() {
  clearTimeout(timer);
  const mine = generation;
  let pending = false;
  try {
    const history = await api.history();
    if (mine !== generation) return;
    mergeFirstPage(history);
    pending = entries.some(isPending);
    renderHistory(history);
  } catch (err) {
    if (mine !== generation) return;
    if (err instanceof ApiError && err.status === 401) return void (await signOut("Your session ended: sign in again."));
    say(`Could not load the history: ${explain(err)}`, "error");
  }
  await refreshBalance(mine);
  if (mine === generation && session) timer = setTimeout(() => void refresh(), pending ? FAST_POLL_MS : SLOW_POLL_MS);
}

/** The newest page replaces the entries it covers; older pages the shopper loaded stay. */
function mergeFirstPage(history: History) {
  const fresh = history.entries.data;
  const oldestFresh = fresh[fresh.length - 1]?.id;
  const older = oldestFresh ? entries.filter((e) => e.id < oldestFresh) : [];
  entries = [...fresh, ...older];
  if (older.length === 0) nextCursor = history.entries.next_cursor;
}

async function loadMore() {
  if (!nextCursor) return;
  const mine = generation;
  const page = await api.history(nextCursor);
  if (mine !== generation) return;
  entries = [...entries, ...page.entries.data.filter((e) => !entries.some((x) => x.id === e.id))];
  nextCursor = page.entries.next_cursor;
  renderHistory(page);
}

async function refreshBalance(mine: number) {
  if (!wallet || !session) return;
  if (!config.token) {
    ui.balance.textContent = "—";
    ui.balanceNote.textContent = config.token_unavailable ?? "the token address is unknown";
    return;
  }
  try {
    const chainId = await wallet.chainId();
    if (mine !== generation) return;
    if (chainId !== config.chain.id) {
      ui.balance.textContent = "—";
      ui.balance.removeAttribute("data-wei");
      ui.balanceNote.textContent = `Your wallet is on chain ${chainId}: use “${ui.setUp.textContent}” to switch to ${config.chain.name}.`;
      return;
    }
    const wei = await wallet.tokenBalance(config.token.address as Address, session.wallet_address as Address);
    if (mine !== generation) return;
    ui.balance.textContent = formatToken(wei, config.token.decimals, config.token.symbol);
    ui.balance.dataset.wei = wei.toString();
    ui.balanceNote.textContent = `on ${config.chain.name}, read through your wallet`;
  } catch (err) {
    if (mine !== generation) return;
    ui.balance.textContent = "—";
    ui.balanceNote.textContent = `Could not read the balance from the chain: ${explain(err)}`;
  }
}

// ------------------------------------------------------------------ rendering

function render() {
  const signedIn = session !== null;
  ui.signIn.hidden = signedIn;
  ui.signOut.hidden = !signedIn;
  ui.account.hidden = !signedIn;
  ui.historySection.hidden = !signedIn;
  ui.wallet.textContent = session ? session.wallet_address : "";
  if (!signedIn) {
    ui.rows.replaceChildren();
    ui.balance.textContent = "—";
    ui.balance.removeAttribute("data-wei");
    ui.balanceNote.textContent = "";
    ui.pending.textContent = "";
  }
}

function renderHistory(history: History) {
  if (!config.token && entries.length === 0) return;
  const token = config.token ?? { decimals: 18, symbol: "CBK" };
  ui.pending.textContent = BigInt(history.totals.pending_wei) > 0n ? `${formatToken(history.totals.pending_wei, token.decimals, token.symbol)} on its way` : "nothing";
  ui.rows.replaceChildren(
    ...entries.map((entry) => {
      const row = historyRow(entry, token, config.chain.explorer_url);
      const tr = document.createElement("tr");
      tr.dataset.entryId = row.id;
      tr.dataset.status = row.status;
      for (const text of [row.date, row.merchant, row.purchase, row.cashback]) tr.append(cell(text));
      const status = cell(row.statusLabel);
      status.className = `status status-${row.status}`;
      tr.append(status, txCell(row.tx));
      return tr;
    }),
  );
  ui.empty.hidden = entries.length > 0;
  ui.more.hidden = nextCursor === null;
}

function cell(text: string): HTMLTableCellElement {
  const td = document.createElement("td");
  td.textContent = text; // never innerHTML: merchant names are other people's text
  return td;
}

function txCell(tx: ReturnType<typeof historyRow>["tx"]): HTMLTableCellElement {
  const td = document.createElement("td");
  if (!tx) return td;
  const link = document.createElement("a");
  link.className = "tx";
  link.textContent = tx.short;
  link.title = tx.href ? tx.hash : `${tx.hash} (click to copy)`;
  if (tx.href) {
    link.href = tx.href;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
  } else {
    // no block explorer on a local chain: the "link" copies the full hash
    link.href = "#";
    link.addEventListener("click", (event) => {
      event.preventDefault();
      void navigator.clipboard?.writeText(tx.hash).then(() => say(`Copied ${tx.hash}`, "ok"), () => {});
    });
  }
  td.append(link);
  if (tx.block) td.append(document.createTextNode(` · block ${tx.block}`));
  return td;
}

// ------------------------------------------------------------------ start

async function main() {
  config = await api.config();
  ui.setUp.textContent = `Add ${config.chain.name}${config.token ? ` and ${config.token.symbol}` : ""} to wallet`;
  const provider = window.ethereum;
  if (!provider) {
    ui.signIn.disabled = true;
    ui.setUp.disabled = true;
    say("No wallet found: install MetaMask (or another Ethereum wallet extension) and reload this page.", "error");
    return;
  }
  wallet = new Wallet(provider);
  provider.on?.("accountsChanged", (accounts: string[]) => void onAccountsChanged(accounts));
  provider.on?.("chainChanged", () => session && void refresh());
  ui.signIn.addEventListener("click", () => void busy(ui.signIn, signIn));
  ui.setUp.addEventListener("click", () => void busy(ui.setUp, setUpWallet));
  ui.signOut.addEventListener("click", () => void busy(ui.signOut, () => signOut("Signed out.")));
  ui.more.addEventListener("click", () => void busy(ui.more, loadMore));

  // A session from before this page load counts only while the wallet still shows its account.
  const existing = await api.session();
  if (existing) {
    const accounts = await wallet.accounts().catch(() => []);
    if (accounts[0] && isAddressEqual(accounts[0], existing.wallet_address as Address)) {
      showSignedIn(existing);
      say(`Signed in as ${existing.wallet_address}.`, "ok");
      return;
    }
    await api.signOut().catch(() => {});
  }
  render();
  say("Connect your wallet and sign in to see your cashback.");
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && session) void refresh();
});

main().catch((err: unknown) => say(`The page could not start: ${explain(err)}`, "error"));
