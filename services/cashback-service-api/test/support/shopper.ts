import { createSiweMessage } from "viem/siwe";
import { mnemonicToAccount } from "viem/accounts";
import type { Answer } from "./api.ts";

/** Hardhat's development accounts #2 and #3 (public keys of a public mnemonic): two shoppers. */
const MNEMONIC = "test test test test test test test test test test test junk";
export const SHOPPER_A = mnemonicToAccount(MNEMONIC, { addressIndex: 2 });
export const SHOPPER_B = mnemonicToAccount(MNEMONIC, { addressIndex: 3 });
export type Signer = typeof SHOPPER_A;

/** A browser-like client of /v1/shopper: keeps the session cookie as a browser would. */
export function shopperClient(baseUrl: string) {
  let cookie: string | undefined;
  let lastSetCookie: string | undefined;

  async function call<T = any>(method: string, path: string, body?: unknown): Promise<Answer<T>> {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...(cookie ? { cookie } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const setCookie = res.headers.get("set-cookie");
    if (setCookie) {
      lastSetCookie = setCookie;
      const pair = setCookie.split(";")[0]!;
      cookie = /Max-Age=0(;|$)/.test(setCookie) ? undefined : pair;
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  /** A fresh nonce from the API, and a message for this site naming it, signed by `signer`. */
  async function signedMessage(account: Signer, over: Partial<Parameters<typeof createSiweMessage>[0]> & { signer?: Signer } = {}) {
    const { signer = account, ...fields } = over;
    const nonce = (await call<{ nonce: string }>("POST", "/v1/shopper/nonce")).body.nonce;
    const url = new URL(baseUrl);
    const message = createSiweMessage({
      address: account.address,
      chainId: 31337,
      domain: url.host,
      uri: url.origin,
      version: "1",
      nonce,
      issuedAt: new Date(),
      ...fields,
    });
    return { message, nonce, signature: await signer.signMessage({ message }) };
  }

  return {
    call,
    signedMessage,
    signInWith: (signed: { message: string; signature: string }) => call("POST", "/v1/shopper/sign-in", { message: signed.message, signature: signed.signature }),
    async signIn(account: Signer) {
      return call("POST", "/v1/shopper/sign-in", await signedMessage(account).then(({ message, signature }) => ({ message, signature })));
    },
    get cookie() {
      return cookie;
    },
    set cookie(value: string | undefined) {
      cookie = value;
    },
    get lastSetCookie() {
      return lastSetCookie;
    },
  };
}
