import type { Logger } from "pino";
import type { Db } from "../db.ts";
import type { Rule, Stacking } from "./engine.ts";
import { loadEnabledRules } from "./rule-store.ts";

/**
 * The enabled rules and the merchants' stacking modes, in memory, so the purchase path reads no
 * configuration from the database. Reloaded when cashback_rules or merchants change anywhere
 * (NOTIFY cashback_api_cache, see support/cache-listener.ts) and after every change made through
 * this instance before it answers, so its own next purchase sees the change.
 */
export class RuleCache {
  private platform: Rule[] = [];
  private byMerchant = new Map<string, Rule[]>();
  private stackingByMerchant = new Map<string, Stacking>();
  private loading?: Promise<void>;
  private again = false;

  constructor(private readonly deps: { db: Db; logger: Logger }) {}

  /** Platform-wide rules and the merchant's own. */
  forMerchant(merchantId: string): readonly Rule[] {
    const own = this.byMerchant.get(merchantId);
    return own ? [...this.platform, ...own] : this.platform;
  }

  async stacking(merchantId: string): Promise<Stacking> {
    const cached = this.stackingByMerchant.get(merchantId);
    if (cached) return cached;
    const map = this.stackingByMerchant;
    const row = await this.deps.db.merchant.findUnique({ where: { id: merchantId }, select: { stacking: true } });
    const stacking = row?.stacking ?? "best_of";
    if (row) map.set(merchantId, stacking);
    return stacking;
  }

  merchantsChanged(): void {
    this.stackingByMerchant = new Map();
  }

  /** Loads the rules again; calls during a load are served by one more load after it. */
  reload(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      try {
        do {
          this.again = false;
          const rules = await loadEnabledRules(this.deps.db);
          const byMerchant = new Map<string, Rule[]>();
          const platform: Rule[] = [];
          for (const rule of rules) {
            if (rule.merchantId === null) platform.push(rule);
            else byMerchant.set(rule.merchantId, [...(byMerchant.get(rule.merchantId) ?? []), rule]);
          }
          this.platform = platform;
          this.byMerchant = byMerchant;
        } while (this.again);
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }
}
