/**
 * The shopper session cookie: HttpOnly (page scripts never see the token), SameSite=Strict (no
 * other site's request carries it), Path=/v1/shopper (never sent to the merchant API), Secure
 * when the page is served over https. Pure helpers; the route decides when to set or clear it.
 */
export const SESSION_COOKIE = "cbk_shopper";
export const SESSION_COOKIE_PATH = "/v1/shopper";

export function sessionCookie(token: string, opts: { maxAgeSeconds: number; secure: boolean }): string {
  return [`${SESSION_COOKIE}=${token}`, `Path=${SESSION_COOKIE_PATH}`, `Max-Age=${Math.max(0, Math.floor(opts.maxAgeSeconds))}`, "HttpOnly", "SameSite=Strict", ...(opts.secure ? ["Secure"] : [])].join("; ");
}

export function clearedSessionCookie(secure: boolean): string {
  return sessionCookie("", { maxAgeSeconds: 0, secure });
}

/** The session token from a Cookie header, if it holds one of the right form (base64url, 43 characters). */
export function sessionToken(cookieHeader: string | undefined): string | undefined {
  if (!cookieHeader) return undefined;
  for (const part of cookieHeader.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    if (/^[A-Za-z0-9_-]{43}$/.test(value)) return value;
  }
  return undefined;
}
