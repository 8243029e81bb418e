-- Fiber Link: apps, users, nonces, tips and the double-entry ledger.
-- Amounts are integers in the asset's base unit (NUMERIC(39,0) holds any u128).

CREATE TABLE apps (
    id          text PRIMARY KEY CHECK (id ~ '^app_[0-9a-f]{24}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Up to two live secrets per app: the current one (expires_at NULL) and, during a rotation, the
-- previous one until its expires_at. Secrets are sealed (ChaCha20-Poly1305) under a key derived
-- from the operator's master key; the database alone does not reveal them.
CREATE TABLE app_secrets (
    app_id      text NOT NULL REFERENCES apps(id),
    secret_id   integer NOT NULL CHECK (secret_id > 0),
    sealed      bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz,
    PRIMARY KEY (app_id, secret_id)
);
CREATE UNIQUE INDEX app_secrets_one_current ON app_secrets (app_id)
    WHERE expires_at IS NULL AND revoked_at IS NULL;

-- A community's users, by the community's own id.
CREATE TABLE users (
    id           bigserial PRIMARY KEY,
    app_id       text NOT NULL REFERENCES apps(id),
    external_id  text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 128),
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (app_id, external_id),
    UNIQUE (id, app_id)
);

-- Request nonces, each accepted once per app; kept well past the ±300 s timestamp window.
CREATE TABLE used_nonces (
    app_id   text NOT NULL,
    nonce    text NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, nonce)
);
CREATE INDEX used_nonces_seen_at ON used_nonces (seen_at);

-- app_id has no foreign key of its own: the payer's and author's user rows (composite keys
-- below) pin it to an existing app, and a direct key would make every new tip lock the one apps
-- row all of an app's tips share.
CREATE TABLE tip_intents (
    id                   uuid PRIMARY KEY,
    app_id               text NOT NULL,
    post_id              text NOT NULL CHECK (length(post_id) BETWEEN 1 AND 128),
    from_user_id         bigint NOT NULL,
    to_user_id           bigint NOT NULL,
    asset                text NOT NULL,
    amount               numeric(39,0) NOT NULL CHECK (amount > 0),
    message              text CHECK (char_length(message) <= 280),
    idempotency_key      text CHECK (length(idempotency_key) BETWEEN 1 AND 128),
    request_fingerprint  text NOT NULL,
    payment_hash         text NOT NULL UNIQUE CHECK (payment_hash ~ '^0x[0-9a-f]{64}$'),
    invoice              text,
    state                text NOT NULL CHECK (state IN ('UNPAID','PENDING','SETTLED','EXPIRED','FAILED')),
    hub_status           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    expires_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    invoice_at           timestamptz,
    pending_at           timestamptz,
    settled_at           timestamptz,
    ended_at             timestamptz,
    -- the settlement watcher's schedule; NULL = nothing more to check
    next_check_at        timestamptz,
    last_checked_at      timestamptz,
    check_failures       integer NOT NULL DEFAULT 0,
    late_checks          integer NOT NULL DEFAULT 0,
    last_error           text,
    FOREIGN KEY (from_user_id, app_id) REFERENCES users (id, app_id),
    FOREIGN KEY (to_user_id, app_id) REFERENCES users (id, app_id),
    UNIQUE (app_id, idempotency_key),
    UNIQUE (id, app_id),
    CHECK (from_user_id <> to_user_id),
    CHECK ((state = 'SETTLED') = (settled_at IS NOT NULL))
) WITH (fillfactor = 70);
-- Room on each page for the invoice (set right after the insert) and the watcher's updates to
-- stay on the page as heap-only tuples, without new index entries.
CREATE INDEX tip_intents_due ON tip_intents (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX tip_intents_to_user ON tip_intents (app_id, to_user_id, state);
CREATE INDEX tip_intents_created ON tip_intents (created_at);

-- Every state change of a tip, with what caused it.
CREATE TABLE tip_events (
    id          bigserial PRIMARY KEY,
    tip_id      uuid NOT NULL,
    app_id      text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    from_state  text,
    to_state    text NOT NULL,
    source      text NOT NULL,
    hub_status  text,
    detail      text,
    FOREIGN KEY (tip_id, app_id) REFERENCES tip_intents (id, app_id)
);
CREATE INDEX tip_events_tip ON tip_events (tip_id, id);

-- Double-entry ledger. An author account is what the service owes one author in one asset; the
-- hub account is the asset held in the hub's channels (it goes negative as tips arrive: the sum
-- of all accounts of an asset is always zero).
CREATE TABLE accounts (
    id          bigserial PRIMARY KEY,
    app_id      text NOT NULL REFERENCES apps(id),
    kind        text NOT NULL CHECK (kind IN ('author','hub','payouts_in_flight','fees')),
    user_id     bigint,
    asset       text NOT NULL,
    -- Kept equal to the sum of the account's entries by a trigger, for author accounts (the
    -- ones that must never go negative). System accounts take an entry with every tip; keeping a
    -- running total on them would make one row the lock every settlement queues on, so their
    -- balance is the sum of their entries (reconcile computes it).
    balance     numeric(39,0) NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (user_id, app_id) REFERENCES users (id, app_id),
    CHECK ((kind = 'author') = (user_id IS NOT NULL)),
    CHECK (kind <> 'author' OR balance >= 0),
    CHECK (kind = 'author' OR balance = 0),
    UNIQUE (id, app_id, asset)
);
CREATE UNIQUE INDEX accounts_key ON accounts (app_id, kind, COALESCE(user_id, 0), asset);

-- app_id: pinned by the entries' accounts (composite keys); no key to the shared apps row.
CREATE TABLE ledger_transactions (
    id               bigserial PRIMARY KEY,
    app_id           text NOT NULL,
    kind             text NOT NULL,
    -- derived from the cause (tip:<id>:settle, ...): a step replayed can never move money twice
    idempotency_key  text NOT NULL UNIQUE,
    tip_id           uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tip_id, app_id) REFERENCES tip_intents (id, app_id)
);

CREATE TABLE ledger_entries (
    id              bigserial PRIMARY KEY,
    transaction_id  bigint NOT NULL REFERENCES ledger_transactions(id),
    account_id      bigint NOT NULL,
    app_id          text NOT NULL,
    asset           text NOT NULL,
    amount          numeric(39,0) NOT NULL CHECK (amount <> 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- an entry can only touch an account of its own app and asset
    FOREIGN KEY (account_id, app_id, asset) REFERENCES accounts (id, app_id, asset)
);
CREATE INDEX ledger_entries_tx ON ledger_entries (transaction_id);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, id);

-- The ledger is append-only.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Author balances follow their entries in the same transaction; the CHECK on accounts refuses
-- any entry that would take an author below zero.
CREATE FUNCTION ledger_apply_entry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts SET balance = balance + NEW.amount
     WHERE id = NEW.account_id AND kind = 'author';
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_entries_apply AFTER INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_apply_entry();

-- Per transaction and asset the entries sum to zero, checked when the transaction commits.
CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad text;
BEGIN
    SELECT asset INTO bad FROM ledger_entries
     WHERE transaction_id = NEW.transaction_id
     GROUP BY asset HAVING sum(amount) <> 0 LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction % does not balance in %', NEW.transaction_id, bad;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();
