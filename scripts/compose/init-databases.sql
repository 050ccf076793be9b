-- One database per stateful service, created when the compose PostgreSQL starts empty.
-- Each service runs its own migrations at start.
CREATE DATABASE receiver;
CREATE DATABASE herder;
CREATE DATABASE fleet;
CREATE DATABASE reconciler;
