-- outbox.lane: the queue a message is delivered in (internal/app/deliver.go).
-- Messages of one lane (a channel, a DM, a response_url, a Jira ticket) go
-- out strictly in id order; lanes are delivered concurrently, and a lane
-- that waits (a 429, an outage of that target) holds back only itself.
-- '' (rows written before this migration) is a lane of its own per row.
ALTER TABLE outbox ADD COLUMN lane TEXT NOT NULL DEFAULT '';
CREATE INDEX outbox_lane ON outbox (lane, state, id);
