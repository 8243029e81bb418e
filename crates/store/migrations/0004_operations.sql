-- Operations: kill switches and the append-only audit trail.

-- Kill switches: one row per app ('app_…') plus 'global'. Every API and worker instance reads
-- this table every couple of seconds; nothing about a pause lives in a process's memory alone.
CREATE TABLE controls (
    scope               text PRIMARY KEY CHECK (scope = 'global' OR scope ~ '^app_[0-9a-f]{24}$'),
    tips_paused         boolean NOT NULL DEFAULT false,
    withdrawals_paused  boolean NOT NULL DEFAULT false,
    reason              text CHECK (length(reason) <= 500),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    updated_by          text NOT NULL
);

-- Every balance-affecting event: a tip created and each of its state changes (with what caused
-- it), every ledger transaction with its entries, every withdrawal step, every operator action
-- (with who did it). Written by triggers on the tables that hold those events, so no code path
-- can forget it; operator actions with no table of their own are written by the store directly.
CREATE TABLE audit_log (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    app_id         text,
    event          text NOT NULL,
    -- who or what did it: worker, api, backfill, operator:<name>, …
    actor          text NOT NULL,
    tip_id         uuid,
    withdrawal_id  uuid,
    -- the author (or withdrawing user) whose money this is about; and a tip's payer
    user_id        bigint,
    payer_id       bigint,
    detail         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tip ON audit_log (tip_id, id) WHERE tip_id IS NOT NULL;
CREATE INDEX audit_log_withdrawal ON audit_log (withdrawal_id, id) WHERE withdrawal_id IS NOT NULL;
CREATE INDEX audit_log_user ON audit_log (app_id, user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX audit_log_payer ON audit_log (app_id, payer_id, id) WHERE payer_id IS NOT NULL;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

CREATE FUNCTION audit_tip_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t tip_intents%ROWTYPE;
BEGIN
    SELECT * INTO t FROM tip_intents WHERE id = NEW.tip_id;
    INSERT INTO audit_log (app_id, event, actor, tip_id, user_id, payer_id, detail)
    VALUES (NEW.app_id,
            CASE WHEN NEW.from_state IS NULL THEN 'tip.created' ELSE 'tip.state' END,
            NEW.source, NEW.tip_id, t.to_user_id, t.from_user_id,
            jsonb_strip_nulls(jsonb_build_object(
                'from', NEW.from_state, 'to', NEW.to_state, 'hub_status', NEW.hub_status,
                'detail', NEW.detail,
                'asset', CASE WHEN NEW.from_state IS NULL THEN t.asset END,
                'amount', CASE WHEN NEW.from_state IS NULL THEN t.amount::text END,
                'post_id', CASE WHEN NEW.from_state IS NULL THEN t.post_id END)));
    RETURN NULL;
END $$;
-- Events that change nothing about money (an invoice attached: UNPAID → UNPAID) stay in
-- tip_events only.
CREATE TRIGGER tip_events_audit AFTER INSERT ON tip_events
    FOR EACH ROW
    WHEN (NEW.from_state IS NULL OR NEW.from_state IS DISTINCT FROM NEW.to_state)
    EXECUTE FUNCTION audit_tip_event();

CREATE FUNCTION audit_withdrawal_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    w withdrawals%ROWTYPE;
BEGIN
    SELECT * INTO w FROM withdrawals WHERE id = NEW.withdrawal_id;
    INSERT INTO audit_log (app_id, event, actor, withdrawal_id, user_id, detail)
    VALUES (NEW.app_id,
            CASE WHEN NEW.from_state IS NULL THEN 'withdrawal.requested' ELSE 'withdrawal.state' END,
            NEW.source, NEW.withdrawal_id, w.user_id,
            jsonb_strip_nulls(jsonb_build_object(
                'from', NEW.from_state, 'to', NEW.to_state, 'detail', NEW.detail,
                'asset', CASE WHEN NEW.from_state IS NULL THEN w.asset END,
                'amount', CASE WHEN NEW.from_state IS NULL THEN w.amount::text END,
                'fee', CASE WHEN NEW.from_state IS NULL THEN w.fee::text END,
                'rail', CASE WHEN NEW.from_state IS NULL THEN w.rail END,
                'tx_hash', w.tx_hash, 'payment_hash', w.payment_hash)));
    RETURN NULL;
END $$;
CREATE TRIGGER withdrawal_events_audit AFTER INSERT ON withdrawal_events
    FOR EACH ROW EXECUTE FUNCTION audit_withdrawal_event();

-- A ledger transaction is audited with its entries, when its database transaction commits
-- (the entries are written after the transaction row).
CREATE FUNCTION audit_ledger_transaction() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    owner bigint;
    entries jsonb;
BEGIN
    SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'account', a.kind, 'user_id', a.user_id, 'asset', e.asset,
               'amount', e.amount::text)) ORDER BY e.id),
           min(a.user_id)
      INTO entries, owner
      FROM ledger_entries e JOIN accounts a ON a.id = e.account_id
     WHERE e.transaction_id = NEW.id;
    -- a transaction without an author entry (an operator-paid fee) is still the tip's author's
    -- or the withdrawing user's story
    owner := COALESCE(owner,
                      (SELECT user_id FROM withdrawals WHERE id = NEW.withdrawal_id),
                      (SELECT to_user_id FROM tip_intents WHERE id = NEW.tip_id));
    INSERT INTO audit_log (app_id, event, actor, tip_id, withdrawal_id, user_id, detail)
    VALUES (NEW.app_id, 'ledger.' || NEW.kind, 'ledger', NEW.tip_id, NEW.withdrawal_id, owner,
            jsonb_build_object('transaction_id', NEW.id, 'key', NEW.idempotency_key,
                               'entries', COALESCE(entries, '[]'::jsonb)));
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_transactions_audit AFTER INSERT ON ledger_transactions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION audit_ledger_transaction();

-- Reconciliation reads tips and withdrawals by creation time, and a window's tips with their
-- settle transactions.
CREATE INDEX withdrawals_created ON withdrawals (created_at);
CREATE INDEX ledger_transactions_tip ON ledger_transactions (tip_id) WHERE tip_id IS NOT NULL;
