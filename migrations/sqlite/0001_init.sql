-- Topics are versioned logs: `head` is the seq of the newest event (0 when
-- empty); `epoch` names this incarnation of the log (DESIGN.md section 2).
CREATE TABLE topics (
    name       TEXT    PRIMARY KEY NOT NULL,
    epoch      INTEGER NOT NULL,
    head       INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

-- Every event of every durable topic. `seq` is assigned as topics.head + 1 in
-- the transaction that inserts the row. `(topic, client_id)` is unique so that
-- a retried write is never a duplicate.
CREATE TABLE events (
    topic      TEXT    NOT NULL REFERENCES topics(name),
    seq        INTEGER NOT NULL,
    client_id  TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (topic, seq)
);
CREATE UNIQUE INDEX events_client_id ON events(topic, client_id);

CREATE TABLE rooms (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    -- lower-cased name, for case-insensitive uniqueness on every backend
    name_key   TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
