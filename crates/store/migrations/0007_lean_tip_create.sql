-- A lean tip.create (issue: CPU per request). A new tip writes its row and its audit record, and
-- nothing else: its "created" and "invoice issued" events are no longer rows of tip_events (each
-- cost an insert, two index entries, a foreign-key check and, for "created", a trigger that read
-- the tip back). The tip row already holds them, written once and never changed: created_at, and
-- invoice_at with who attached the invoice (below). Reading a tip's events puts them back in
-- their place (Store::tip_events). Tips created before this migration keep their event rows.
ALTER TABLE tip_intents ADD COLUMN invoice_source text;
