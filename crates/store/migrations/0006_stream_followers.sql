-- Workers that follow the hub's store-change stream (FNN's subscribe_store_changes; DESIGN §5).
-- A worker with a live subscription keeps its row's lease fresh; while any lease is live, a new
-- tip needs no early polls (a payment to it is announced by the stream), and the worker polls
-- open invoices only as a slow safety net. A worker whose stream ends deletes its row; a crashed
-- worker's lease runs out.
CREATE TABLE stream_followers (
    worker_id      text PRIMARY KEY CHECK (length(worker_id) BETWEEN 1 AND 200),
    -- when the subscription began: events from then on reach this worker
    since          timestamptz NOT NULL,
    followed_until timestamptz NOT NULL,
    CHECK (followed_until >= since)
);
