-- Tell listeners (the API's live pay pages) when a tip's state changes. Delivered on commit; a
-- listener that misses one re-reads the tip, so this is a hint, never the record.
CREATE FUNCTION tip_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tip_changed', NEW.id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER tip_intents_notify AFTER UPDATE OF state ON tip_intents
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION tip_notify_change();
