// Amounts as the service reads them (docs/api.md, "Amounts"): decimal strings in asset units,
// no sign, exponent, spaces, leading zero or bare point, at most the asset's decimals, not zero.
// Pure module: no Discourse or Ember imports, tested with `node --test`.

const AMOUNT_PATTERN = /^(0|[1-9][0-9]*)(?:\.([0-9]+))?$/;

// Integer base units of a well-formed amount string, or null.
export function toUnits(amount, decimals) {
  const m = AMOUNT_PATTERN.exec(String(amount ?? ""));
  if (!m) {
    return null;
  }
  const frac = m[2] ?? "";
  if (frac.length > decimals) {
    return null;
  }
  return BigInt(m[1] + frac.padEnd(decimals, "0"));
}

// The decimal string of integer base units, without trailing zeros ("150000000", 8 -> "1.5").
export function fromUnits(units, decimals) {
  const digits = BigInt(units)
    .toString()
    .padStart(decimals + 1, "0");
  const int = digits.slice(0, digits.length - decimals);
  const frac = digits.slice(digits.length - decimals).replace(/0+$/, "");
  return frac ? `${int}.${frac}` : int;
}

// Checks what a person typed. Returns { ok: true, amount } with the string to send, or
// { ok: false, reason, ... } where reason is the service's own reason name when the service
// would refuse the same string for the same cause, so one message table serves both.
//   decimals: the asset's decimals; min, max: optional limits in asset units (strings)
export function parseAmount(
  input,
  { decimals = 8, min = null, max = null } = {}
) {
  const amount = String(input ?? "").trim();
  if (amount === "") {
    return { ok: false, reason: "amount_empty" };
  }
  const m = AMOUNT_PATTERN.exec(amount);
  if (!m) {
    return { ok: false, reason: "amount_malformed" };
  }
  if ((m[2] ?? "").length > decimals) {
    return { ok: false, reason: "amount_too_many_decimals", decimals };
  }
  const units = toUnits(amount, decimals);
  if (units === 0n) {
    return { ok: false, reason: "amount_not_positive" };
  }
  const minUnits = limitUnits(min, decimals);
  if (minUnits !== null && units < minUnits) {
    return { ok: false, reason: "tip_below_minimum", limit: String(min) };
  }
  const maxUnits = limitUnits(max, decimals);
  if (maxUnits !== null && units > maxUnits) {
    return { ok: false, reason: "tip_above_maximum", limit: String(max) };
  }
  return { ok: true, amount, units };
}

// A configured limit in base units; a limit finer than the asset's decimals is rounded toward
// the inside of the range by the comparison (exact when it fits).
function limitUnits(limit, decimals) {
  if (limit === null || limit === undefined || String(limit).trim() === "") {
    return null;
  }
  const m = AMOUNT_PATTERN.exec(String(limit).trim());
  if (!m) {
    return null;
  }
  const frac = (m[2] ?? "").slice(0, decimals);
  return BigInt(m[1] + frac.padEnd(decimals, "0"));
}

// An amount string for display: thousands grouped per locale, decimals kept exactly as given
// (amounts are money; they are never rounded through floating point).
export function formatAmount(amount, locale = "en") {
  const m = AMOUNT_PATTERN.exec(String(amount ?? ""));
  if (!m) {
    return String(amount ?? "");
  }
  const int = BigInt(m[1]).toLocaleString(locale);
  if (!m[2]) {
    return int;
  }
  const point =
    new Intl.NumberFormat(locale)
      .formatToParts(1.5)
      .find((p) => p.type === "decimal")?.value ?? ".";
  return `${int}${point}${m[2]}`;
}

// Tip presets from the site setting ("1|5|10"): the well-formed ones, in order, deduplicated.
export function parsePresets(setting) {
  const seen = new Set();
  return String(setting ?? "")
    .split("|")
    .map((s) => s.trim())
    .filter((s) => {
      const valid = AMOUNT_PATTERN.test(s) && !/^0(\.0*)?$/.test(s);
      if (!valid || seen.has(s)) {
        return false;
      }
      seen.add(s);
      return true;
    });
}
