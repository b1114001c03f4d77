-- 0006_nodes.sql - the sheafd processes sharing this database, for
-- GET /v1/nodes.
--
-- Every sheafd (any --role) writes its row at start and renews it from its
-- sweeper every few seconds (service/node.c): the heartbeat moves
-- lease_until to now() + the node's SHEAF_LEASE_S, the same rule as a
-- task's lease. A node whose lease_until has passed is shown 'lost'; its
-- tasks' own leases expire and are requeued as for any worker. A node
-- stopping cleanly deletes its row; every node's sweeper deletes the rows
-- of nodes lost for longer than SHEAF_NODE_RETENTION_S. A node whose row
-- was deleted while it was cut off writes it again at its next heartbeat
-- (an upsert by id).

CREATE TABLE nodes (
    id           uuid PRIMARY KEY,
    seq          bigserial UNIQUE,     -- listing order and cursors
    hostname     text NOT NULL,
    address      text,                 -- SHEAF_ADVERTISE, or the API's
                                       -- SHEAF_LISTEN; NULL: not given
    role         text NOT NULL,        -- 'all', 'api' or 'worker'
    workers      int NOT NULL,         -- worker processes it runs
    pid          int NOT NULL,         -- of the sheafd main process
    build        text NOT NULL,        -- version and git commit
    lease_s      int NOT NULL,         -- its SHEAF_LEASE_S
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    lease_until  timestamptz NOT NULL  -- lost once this has passed
);

CREATE INDEX nodes_lease ON nodes (lease_until);
