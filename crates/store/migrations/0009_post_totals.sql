-- What each post has received: the settled tips per post and asset, read by `post.totals` for a
-- topic's posts at once. A partial index the settlement maintains in the same transaction as the
-- credit (the tip's state turns SETTLED with its ledger entries), so a total can never disagree
-- with the settled tips; new tips (UNPAID) do not touch it. Its INCLUDE columns let the sums be
-- read from the index alone.
CREATE INDEX tip_intents_post_settled ON tip_intents (app_id, post_id) INCLUDE (asset, amount)
    WHERE state = 'SETTLED';
