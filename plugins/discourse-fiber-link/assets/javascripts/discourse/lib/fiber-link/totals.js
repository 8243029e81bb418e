// What a post has received, as post.fiber_link_totals carries it (the service's post.totals:
// [{asset, decimals, amount, tips}] per asset, settled tips only). Pure module, tested with
// `node --test`.
import { formatAmount } from "./amount.js";

// { amounts: "12.5 CKB + 3 DEMO", tips: 4 }, or null when the post has received nothing.
export function summarizeTotals(totals, locale = "en") {
  const list = Array.isArray(totals)
    ? totals.filter(
        (t) => t && typeof t.asset === "string" && Number(t.tips) > 0
      )
    : [];
  if (list.length === 0) {
    return null;
  }
  return {
    amounts: list
      .map((t) => `${formatAmount(t.amount, locale)} ${t.asset}`)
      .join(" + "),
    tips: list.reduce((n, t) => n + Number(t.tips), 0),
  };
}
