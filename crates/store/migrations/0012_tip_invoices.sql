-- The invoice the hub issued for a tip lives in a table of its own, written once and never
-- changed. Attaching it used to update the tip row: the new version needed room on the row's page
-- for the invoice (about 500 bytes), and where there was none (a third of the time, measured) it
-- went to another page with a new entry in each of the tip's nine indexes, leaving a dead version
-- for vacuum. Over a long run the indexes and the heap grew by that much more, and so did the
-- cost of every insert. Now the attach is an insert into an append-only table keyed by the
-- (time-ordered) tip id, and tip rows are packed full: nothing is added to them after the insert
-- but state and schedule changes, which move index keys anyway.
CREATE TABLE tip_invoices (
    tip_id     uuid PRIMARY KEY REFERENCES tip_intents (id),
    invoice    text NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    -- who attached it (the API, or the watcher recovering it from the hub); NULL for tips from
    -- before migration 7, whose "invoice issued" event is a tip_events row
    source     text
);

-- The invoice a payer was shown is the one the tip is settled against: it never changes (the
-- refusal the ledger and the audit log use).
CREATE TRIGGER tip_invoices_append_only BEFORE UPDATE OR DELETE ON tip_invoices
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER tip_invoices_no_truncate BEFORE TRUNCATE ON tip_invoices
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

INSERT INTO tip_invoices (tip_id, invoice, issued_at, source)
SELECT id, invoice, COALESCE(invoice_at, updated_at), invoice_source
  FROM tip_intents WHERE invoice IS NOT NULL;

ALTER TABLE tip_intents DROP COLUMN invoice, DROP COLUMN invoice_at, DROP COLUMN invoice_source;
ALTER TABLE tip_intents SET (fillfactor = 100);
