-- The ledger's app boundary and the author balances, guarded by the database itself.
--
-- 1. Every entry belongs to its transaction's app. The entries' composite key already pins each
--    entry to an account of its own app and asset, but nothing tied the entries of one transaction
--    to one app: a balanced transaction could move money from an author of app A to a user of app
--    B, and reconcile (which groups by the transaction's app) would not notice.
-- 2. An author's balance column changes only through an entry (the ledger_apply_entry trigger):
--    an UPDATE of it from anywhere else is refused, as is a new account with a balance, or a change
--    of an account's identity (app, kind, user, asset).

CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad text;
BEGIN
    IF NEW.app_id IS DISTINCT FROM
       (SELECT app_id FROM ledger_transactions WHERE id = NEW.transaction_id) THEN
        RAISE EXCEPTION 'ledger entry of app % in a transaction of another app (transaction %)',
            NEW.app_id, NEW.transaction_id;
    END IF;
    SELECT asset INTO bad FROM ledger_entries
     WHERE transaction_id = NEW.transaction_id
     GROUP BY asset HAVING sum(amount) <> 0 LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction % does not balance in %', NEW.transaction_id, bad;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION accounts_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.balance <> 0 THEN
            RAISE EXCEPTION 'a new account starts at balance 0; its entries make its balance';
        END IF;
        RETURN NEW;
    END IF;
    IF (NEW.app_id, NEW.kind, NEW.user_id, NEW.asset) IS DISTINCT FROM
       (OLD.app_id, OLD.kind, OLD.user_id, OLD.asset) THEN
        RAISE EXCEPTION 'an account''s app, kind, user and asset never change (account %)', OLD.id;
    END IF;
    -- pg_trigger_depth() is 2 when this runs under ledger_apply_entry (the entry's trigger), 1
    -- for a statement sent by a client
    IF NEW.balance IS DISTINCT FROM OLD.balance AND pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'an account''s balance changes only through ledger entries (account %)', OLD.id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_guard BEFORE INSERT OR UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_guard();
