// A minimal Socket.IO 4 broadcast server: the peer tandem is measured against.
// Clients `join` a room (acknowledged); a publisher emits `publish(room, payload)`
// and the server broadcasts `event(payload)` to the room. Loopback only.
const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 3100);
const io = new Server({
  transports: ["websocket", "polling"],
  pingInterval: 25000,
  pingTimeout: 20000,
  maxHttpBufferSize: 1e6,
});

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(String(room));
    if (typeof ack === "function") ack();
  });
  socket.on("publish", (room, payload) => {
    io.to(String(room)).emit("event", payload);
  });
});

const server = http.createServer();
io.attach(server);
server.listen(port, "127.0.0.1");
process.on("SIGTERM", () => io.close(() => process.exit(0)));
console.log(`socket.io peer listening on 127.0.0.1:${port}`);
