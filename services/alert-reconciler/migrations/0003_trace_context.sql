-- The W3C trace context (`traceparent`) of the span that wrote each row, when spans are
-- exported: a run, a chat report and an approval button are acted on later — by the leader's
-- supervisor, the outbox sender, a person pressing the button — possibly on another replica,
-- and that later work continues the trace of what caused it. NULL when tracing is off.
ALTER TABLE runs       ADD COLUMN traceparent text;
ALTER TABLE deliveries ADD COLUMN traceparent text;
ALTER TABLE approvals  ADD COLUMN traceparent text;
