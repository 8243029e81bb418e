// Tip and withdrawal states: their labels (i18n keys), tone and finality; the expiry countdown.
// Pure module, tested with `node --test`.

export const TIP_STATES = {
  UNPAID: { key: "fiber_link.tip_state.unpaid", tone: "waiting", final: false },
  PENDING: {
    key: "fiber_link.tip_state.pending",
    tone: "waiting",
    final: false,
  },
  SETTLED: {
    key: "fiber_link.tip_state.settled",
    tone: "success",
    final: true,
  },
  EXPIRED: { key: "fiber_link.tip_state.expired", tone: "ended", final: true },
  FAILED: { key: "fiber_link.tip_state.failed", tone: "failed", final: true },
};

export const WITHDRAWAL_STATES = {
  AWAITING_APPROVAL: {
    key: "fiber_link.withdrawal_state.awaiting_approval",
    tone: "waiting",
    cancellable: true,
  },
  QUEUED: {
    key: "fiber_link.withdrawal_state.queued",
    tone: "waiting",
    cancellable: true,
  },
  SUBMITTING: {
    key: "fiber_link.withdrawal_state.submitting",
    tone: "waiting",
    cancellable: false,
  },
  SUBMITTED: {
    key: "fiber_link.withdrawal_state.submitted",
    tone: "waiting",
    cancellable: false,
  },
  COMPLETED: {
    key: "fiber_link.withdrawal_state.completed",
    tone: "success",
    cancellable: false,
  },
  FAILED: {
    key: "fiber_link.withdrawal_state.failed",
    tone: "failed",
    cancellable: false,
  },
  CANCELLED: {
    key: "fiber_link.withdrawal_state.cancelled",
    tone: "ended",
    cancellable: false,
  },
};

export function tipStateKey(state) {
  return TIP_STATES[state]?.key ?? "fiber_link.tip_state.unknown";
}

export function isFinalTipState(state) {
  return TIP_STATES[state]?.final === true;
}

export function withdrawalStateKey(state) {
  return WITHDRAWAL_STATES[state]?.key ?? "fiber_link.withdrawal_state.unknown";
}

export function isCancellable(state) {
  return WITHDRAWAL_STATES[state]?.cancellable === true;
}

// Whole seconds until `expiresAt` (an ISO string), never negative; null when unknown.
export function secondsLeft(expiresAt, nowMs = Date.now()) {
  const t = Date.parse(expiresAt ?? "");
  if (Number.isNaN(t)) {
    return null;
  }
  return Math.max(0, Math.floor((t - nowMs) / 1000));
}

// "59:07", "1:00:00": the countdown as shown next to an invoice.
export function formatCountdown(seconds) {
  if (seconds === null || seconds === undefined) {
    return "";
  }
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

// A timestamp for lists, in the reader's locale.
export function formatDateTime(iso, locale = "en") {
  const t = Date.parse(iso ?? "");
  if (Number.isNaN(t)) {
    return "";
  }
  return new Intl.DateTimeFormat(locale, {
    dateStyle: "medium",
    timeStyle: "short",
  }).format(new Date(t));
}

// A transaction link from the explorer URL template setting ("https://…/%{tx_hash}").
export function explorerUrl(template, txHash) {
  if (!template || !txHash || !/^0x[0-9a-fA-F]{64}$/.test(txHash)) {
    return null;
  }
  if (!/^https:\/\//.test(template) || !template.includes("%{tx_hash}")) {
    return null;
  }
  return template.replace("%{tx_hash}", txHash);
}

// A quick check of a withdrawal destination before asking the service (which decides).
export function destinationProblem(kind, value) {
  const v = String(value ?? "").trim();
  if (v === "") {
    return "destination_empty";
  }
  if (kind === "ckb_address") {
    return /^ck[bt]1[02-9ac-hj-np-z]{20,}$/.test(v)
      ? null
      : "address_malformed";
  }
  if (kind === "fiber_invoice") {
    return /^fib[a-z0-9]+$/i.test(v) ? null : "invoice_malformed";
  }
  return "destination_malformed";
}
