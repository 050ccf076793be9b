-- A retry claim backed by a PostgreSQL session lock held by the claiming worker: when the worker
-- dies (kill -9, a lost node), PostgreSQL drops the lock with its connection and the next
-- delivery takes the retry over at once. Claims made by earlier versions (false) keep the
-- lease rule (`claimed_at` older than handler timeout + 60 s).
ALTER TABLE decisions ADD COLUMN claim_locked boolean NOT NULL DEFAULT false;
