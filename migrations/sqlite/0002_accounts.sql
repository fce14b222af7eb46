-- Accounts (issue 8). `name_key` is the name's uniqueness key (NFKC,
-- case-folded, confusable skeleton: `validate::name_key`). A NULL
-- `password_hash` cannot log in: the system account that owns the demo
-- rooms and everything written before accounts existed.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL,
    name_key      TEXT    NOT NULL UNIQUE,
    password_hash TEXT,
    created_at    INTEGER NOT NULL
);
INSERT INTO users (id, name, name_key, password_hash, created_at)
    VALUES (1, 'tandem', 'tandem', NULL, 0);

-- Server-side sessions. Only the SHA-256 of the 256-bit session id is
-- stored; `id` is the handle the sessions page shows and revokes by.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    secret_hash  BLOB    NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    user_agent   TEXT    NOT NULL DEFAULT '',
    ip           TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Personal access tokens: the SHA-256 of the token, its scopes
-- (comma-separated: read, write, publish) and a label.
CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    secret_hash  BLOB    NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    label        TEXT    NOT NULL,
    scopes       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX tokens_user ON tokens(user_id);

-- Rooms get an owner (existing rooms: the system account) and a visibility.
-- Names are unique among public rooms, and among one owner's private rooms:
-- a global rule would let anyone probe for a private room by its name.
-- (The table is rebuilt: SQLite cannot drop the old UNIQUE constraint.)
CREATE TABLE rooms_v2 (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    name_key   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    owner_id   INTEGER NOT NULL DEFAULT 1 REFERENCES users(id),
    private    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO rooms_v2 (id, name, name_key, created_at)
    SELECT id, name, name_key, created_at FROM rooms;
DROP TABLE rooms;
ALTER TABLE rooms_v2 RENAME TO rooms;
CREATE UNIQUE INDEX rooms_public_name ON rooms(name_key) WHERE private = 0;
CREATE UNIQUE INDEX rooms_private_name ON rooms(owner_id, name_key) WHERE private = 1;

-- Members of private rooms (the owner is one too).
CREATE TABLE members (
    room_id  INTEGER NOT NULL REFERENCES rooms(id),
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    added_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX members_user ON members(user_id);
