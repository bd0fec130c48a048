-- secretbot schema version 5: indexes for `/secrets audit`, which shows the
-- newest events since a time, of one actor or of everyone. Without them the
-- answer read the whole log (a million events: seconds).
CREATE INDEX audit_events_time ON audit_events (time_ns);
CREATE INDEX audit_events_actor_time ON audit_events (actor, time_ns);
