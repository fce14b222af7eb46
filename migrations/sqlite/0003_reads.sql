-- Read positions: the highest seq of a room's log that an account has had
-- on screen with the room visible. It only moves forward. A room without a
-- row was never read by that account: it has no unread count.
CREATE TABLE reads (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    room_id    INTEGER NOT NULL REFERENCES rooms(id),
    seq        INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id)
);
CREATE INDEX reads_room ON reads(room_id);
