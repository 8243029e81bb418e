-- Withdrawals: per-app policy, the withdrawal record with its two-phase execution, its timeline,
-- and the ledger's links to it.

-- Custody accounts: 'hub' holds what arrived over Fiber; 'hot_wallet' what on-chain payouts
-- leave from; 'fees' counts network fees paid out of custody; 'operator' is what the operator put
-- in (network fees it pays itself). Like 'hub', none of them keeps a running balance.
ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check
    CHECK (kind IN ('author','hub','hot_wallet','payouts_in_flight','fees','operator'));

-- An app's withdrawal rules for one asset; a NULL column takes the configured default. The row is
-- also the lock that serializes an app's withdrawal requests in one asset (caps are per app).
CREATE TABLE withdrawal_policies (
    app_id               text NOT NULL REFERENCES apps(id),
    asset                text NOT NULL,
    allowed              boolean,
    min_amount           numeric(39,0) CHECK (min_amount >= 0),
    max_per_request      numeric(39,0) CHECK (max_per_request > 0),
    author_daily_cap     numeric(39,0) CHECK (author_daily_cap > 0),
    app_daily_cap        numeric(39,0) CHECK (app_daily_cap > 0),
    cooldown_secs        bigint CHECK (cooldown_secs >= 0),
    approval_threshold   numeric(39,0) CHECK (approval_threshold >= 0),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    updated_by           text,
    PRIMARY KEY (app_id, asset)
);

CREATE TABLE withdrawals (
    id                   uuid PRIMARY KEY,
    app_id               text NOT NULL,
    user_id              bigint NOT NULL,
    asset                text NOT NULL,
    -- leaves the author's balance; fee is exact on chain and the most the route may cost on Fiber
    amount               numeric(39,0) NOT NULL CHECK (amount > 0),
    fee                  numeric(39,0) NOT NULL CHECK (fee >= 0),
    receive_amount       numeric(39,0) NOT NULL CHECK (receive_amount > 0),
    fee_mode             text NOT NULL CHECK (fee_mode IN ('deduct','operator')),
    rail                 text NOT NULL CHECK (rail IN ('onchain','fiber')),
    destination          jsonb NOT NULL,
    idempotency_key      text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 128),
    request_fingerprint  text NOT NULL,
    state                text NOT NULL CHECK (state IN ('AWAITING_APPROVAL','QUEUED','SUBMITTING',
                                                        'SUBMITTED','COMPLETED','FAILED','CANCELLED')),
    -- Fiber: the invoice's payment hash, known from the request on.
    payment_hash         text CHECK (payment_hash ~ '^0x[0-9a-f]{64}$'),
    -- On chain: the signed transaction (CKB JSON) and its hash, persisted before it is sent.
    signed_tx            jsonb,
    tx_hash              text CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    tx_builds            integer NOT NULL DEFAULT 0,
    -- what the payout really cost (on chain = fee; on Fiber what the hub reports)
    actual_fee           numeric(39,0) CHECK (actual_fee >= 0),
    confirmations        bigint,
    block_number         bigint,
    failure_reason       text,
    failure_message      text,
    -- the executor's schedule; NULL = nothing for the worker to do
    next_attempt_at      timestamptz,
    attempts             integer NOT NULL DEFAULT 0,
    last_error           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- the last time the withdrawal moved forward (stuck detection)
    progressed_at        timestamptz NOT NULL DEFAULT now(),
    approved_at          timestamptz,
    approved_by          text,
    submitted_at         timestamptz,
    completed_at         timestamptz,
    ended_at             timestamptz,
    FOREIGN KEY (user_id, app_id) REFERENCES users (id, app_id),
    UNIQUE (app_id, idempotency_key),
    UNIQUE (id, app_id),
    CHECK ((rail = 'fiber') = (payment_hash IS NOT NULL)),
    CHECK (rail = 'onchain' OR signed_tx IS NULL),
    CHECK ((signed_tx IS NULL) = (tx_hash IS NULL)),
    CHECK (state NOT IN ('SUBMITTED','COMPLETED') OR rail = 'fiber' OR tx_hash IS NOT NULL),
    CHECK ((state = 'COMPLETED') = (completed_at IS NOT NULL))
);
CREATE INDEX withdrawals_user ON withdrawals (app_id, user_id, created_at DESC, id DESC);
CREATE INDEX withdrawals_due ON withdrawals (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX withdrawals_open ON withdrawals (app_id, state) WHERE state NOT IN ('COMPLETED','FAILED','CANCELLED');
CREATE INDEX withdrawals_recent ON withdrawals (app_id, asset, created_at);
-- One live withdrawal per invoice: the same invoice can never be paid by two withdrawals.
CREATE UNIQUE INDEX withdrawals_invoice_live ON withdrawals (payment_hash)
    WHERE payment_hash IS NOT NULL AND state NOT IN ('FAILED','CANCELLED');

CREATE TABLE withdrawal_events (
    id             bigserial PRIMARY KEY,
    withdrawal_id  uuid NOT NULL,
    app_id         text NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    from_state     text,
    to_state       text NOT NULL,
    source         text NOT NULL,
    detail         text,
    FOREIGN KEY (withdrawal_id, app_id) REFERENCES withdrawals (id, app_id)
);
CREATE INDEX withdrawal_events_w ON withdrawal_events (withdrawal_id, id);

-- A ledger transaction's cause may be a withdrawal; commit_xid orders settlements for the
-- settled-tips feed (a transaction id is only handed out once everything before it finished).
ALTER TABLE ledger_transactions ADD COLUMN withdrawal_id uuid;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_withdrawal
    FOREIGN KEY (withdrawal_id, app_id) REFERENCES withdrawals (id, app_id);
ALTER TABLE ledger_transactions ADD COLUMN commit_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX ledger_transactions_feed ON ledger_transactions (app_id, commit_xid, id)
    WHERE kind = 'tip_settle';
CREATE INDEX ledger_transactions_withdrawal ON ledger_transactions (withdrawal_id)
    WHERE withdrawal_id IS NOT NULL;

-- Tip lists by author and by payer, newest first, for keyset pagination.
CREATE INDEX tip_intents_received ON tip_intents (app_id, to_user_id, created_at DESC, id DESC);
CREATE INDEX tip_intents_sent ON tip_intents (app_id, from_user_id, created_at DESC, id DESC);

-- The hot wallet's cells spent by on-chain payouts not yet final: a cell is in at most one
-- payout transaction (two payouts can never race for the same input).
CREATE TABLE hot_wallet_inputs (
    out_point      text PRIMARY KEY,
    withdrawal_id  uuid NOT NULL REFERENCES withdrawals(id),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hot_wallet_inputs_w ON hot_wallet_inputs (withdrawal_id);
