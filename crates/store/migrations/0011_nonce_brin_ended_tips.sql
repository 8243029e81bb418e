-- Request nonces are written once per request and read only by the primary key (is this one
-- new?) and by the worker's prune, once a minute (older than the retention). A B-tree on seen_at
-- cost every request one more index insertion and its WAL; a BRIN index (one summary per 128
-- pages, in insertion order as the rows are) serves the prune's range for a fraction of that.
-- Where freed pages are reused the summaries widen and the prune reads more of the table: at
-- most the retention's worth of requests (15 minutes), once a minute.
DROP INDEX used_nonces_seen_at;
CREATE INDEX used_nonces_seen_at ON used_nonces USING brin (seen_at);

-- After a gap in the hub's store-change stream, the worker checks the tips that ended just
-- before or during it (a payment racing an invoice's expiry or cancel may have been written
-- unheard): found by when they ended, among ended tips only.
CREATE INDEX tip_intents_ended ON tip_intents (ended_at) WHERE state IN ('EXPIRED','FAILED');
