//! The WebSocket protocol as `Socket` reads and writes it: the reading half
//! (`Reader`) on byte buffers, the whole socket over an in-memory pipe.
#![allow(clippy::unwrap_used)] // tests may unwrap

use super::*;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// One client frame: masked (unless `mask` is false), with the given first
/// byte (FIN, RSV bits, opcode).
fn client_frame(first: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let mut out = vec![first];
    let bit = if mask { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(bit | n as u8),
        n @ 126..=0xffff => {
            out.push(bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if mask {
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i & 3]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

fn read_all(reader: &mut Reader, bytes: &[u8]) -> Vec<Result<Message, String>> {
    let mut buf = BytesMut::from(bytes);
    let mut got = Vec::new();
    loop {
        match reader.next(&mut buf) {
            Ok(Some(m)) => got.push(Ok(m)),
            Ok(None) => return got,
            Err(e) => {
                got.push(Err(e.to_string()));
                return got;
            }
        }
    }
}

fn text(m: &Result<Message, String>) -> &str {
    match m {
        Ok(Message::Text(t)) => t.as_str(),
        other => panic!("not a text: {other:?}"),
    }
}

#[test]
fn a_masked_text_frame_is_a_message() {
    let mut r = Reader::new(1024, false);
    let got = read_all(&mut r, &client_frame(0x81, br#"{"type":"ping"}"#, true));
    assert_eq!(got.len(), 1);
    assert_eq!(text(&got[0]), r#"{"type":"ping"}"#);
}

#[test]
fn a_message_arrives_in_pieces() {
    let bytes = client_frame(0x81, &[b'a'; 300], true);
    let mut r = Reader::new(1024, false);
    let mut buf = BytesMut::new();
    for (i, b) in bytes.iter().enumerate() {
        buf.extend_from_slice(&[*b]);
        let got = r.next(&mut buf).unwrap();
        assert_eq!(got.is_some(), i == bytes.len() - 1, "byte {i}");
    }
    assert!(buf.is_empty());
}

#[test]
fn an_unmasked_client_frame_is_a_protocol_error() {
    let mut r = Reader::new(1024, false);
    let got = read_all(&mut r, &client_frame(0x81, b"hi", false));
    assert!(
        got[0].as_ref().unwrap_err().contains("not masked"),
        "{got:?}"
    );
}

#[test]
fn fragments_join_and_a_ping_may_come_between_them() {
    let mut bytes = client_frame(0x01, b"hel", true);
    bytes.extend(client_frame(0x89, b"p", true));
    bytes.extend(client_frame(0x00, b"lo ", true));
    bytes.extend(client_frame(0x80, b"you", true));
    let mut r = Reader::new(1024, false);
    let got = read_all(&mut r, &bytes);
    assert!(
        matches!(&got[0], Ok(Message::Ping(p)) if &p[..] == b"p"),
        "{got:?}"
    );
    assert_eq!(text(&got[1]), "hello you");
    assert_eq!(got.len(), 2);
}

#[test]
fn fragment_order_is_enforced() {
    let mut r = Reader::new(1024, false);
    let got = read_all(&mut r, &client_frame(0x80, b"x", true));
    assert!(got[0].as_ref().unwrap_err().contains("continuation"));
    let mut bytes = client_frame(0x01, b"a", true);
    bytes.extend(client_frame(0x81, b"b", true));
    let got = read_all(&mut Reader::new(1024, false), &bytes);
    assert!(got[0].as_ref().unwrap_err().contains("inside a fragmented"));
}

#[test]
fn an_oversized_message_is_refused_from_its_header() {
    // Only the header has arrived: refused before 1 MB is read.
    let head = &client_frame(0x81, &vec![b'a'; 1 << 20], true)[..14];
    let got = read_all(&mut Reader::new(64 * 1024, false), head);
    assert_eq!(got[0].as_ref().unwrap_err(), "message above 65536 bytes");
    // Fragments count together.
    let mut bytes = client_frame(0x01, &[b'a'; 600], true);
    bytes.extend(client_frame(0x80, &[b'a'; 600], true));
    let got = read_all(&mut Reader::new(1000, false), &bytes);
    assert!(got[0].as_ref().unwrap_err().contains("above 1000"));
}

#[test]
fn control_frames_are_short_whole_and_plain() {
    let long_ping = client_frame(0x89, &[0; 126], true);
    assert!(read_all(&mut Reader::new(1024, true), &long_ping)[0].is_err());
    let split_ping = client_frame(0x09, b"p", true);
    assert!(read_all(&mut Reader::new(1024, true), &split_ping)[0].is_err());
    let rsv_ping = client_frame(0xC9, b"p", true);
    assert!(read_all(&mut Reader::new(1024, true), &rsv_ping)[0].is_err());
    let rsv2 = client_frame(0xA1, b"p", true);
    assert!(read_all(&mut Reader::new(1024, true), &rsv2)[0].is_err());
    let reserved_opcode = client_frame(0x83, b"p", true);
    assert!(read_all(&mut Reader::new(1024, true), &reserved_opcode)[0].is_err());
}

#[test]
fn close_frames_carry_a_valid_code_and_utf8_reason() {
    let mut body = 1001u16.to_be_bytes().to_vec();
    body.extend_from_slice(b"bye");
    let got = read_all(
        &mut Reader::new(1024, false),
        &client_frame(0x88, &body, true),
    );
    assert!(matches!(&got[0], Ok(Message::Close(Some(f))) if f.code == 1001 && f.reason == "bye"));
    let got = read_all(
        &mut Reader::new(1024, false),
        &client_frame(0x88, &[], true),
    );
    assert!(matches!(&got[0], Ok(Message::Close(None))));
    for bad in [&1005u16.to_be_bytes()[..], &[0x03], &[0x03, 0xe8, 0xff]] {
        let got = read_all(
            &mut Reader::new(1024, false),
            &client_frame(0x88, bad, true),
        );
        assert!(got[0].is_err(), "{bad:?}");
    }
}

#[test]
fn invalid_utf8_text_is_refused() {
    let got = read_all(
        &mut Reader::new(1024, false),
        &client_frame(0x81, &[0xc3, 0x28], true),
    );
    assert_eq!(got[0].as_ref().unwrap_err(), "a text message is not UTF-8");
}

#[test]
fn compressed_messages_are_inflated_only_when_agreed() {
    let json =
        br#"{"type":"send","topic":"room:1","client_id":"c-1","body":"hello hello hello hello"}"#;
    let small = deflate::deflate(json).unwrap();
    let frame = client_frame(0xC1, &small, true);
    let got = read_all(&mut Reader::new(1024, true), &frame);
    assert_eq!(text(&got[0]).as_bytes(), json);
    let got = read_all(&mut Reader::new(1024, false), &frame);
    assert!(got[0].as_ref().unwrap_err().contains("RSV1"));
    // Split across fragments: RSV1 on the first only.
    let (a, b) = small.split_at(small.len() / 2);
    let mut bytes = client_frame(0x41, a, true);
    bytes.extend(client_frame(0x80, b, true));
    let got = read_all(&mut Reader::new(1024, true), &bytes);
    assert_eq!(text(&got[0]).as_bytes(), json);
    let mut bytes = client_frame(0x41, a, true);
    bytes.extend(client_frame(0xC0, b, true));
    assert!(read_all(&mut Reader::new(1024, true), &bytes)[0].is_err());
}

#[test]
fn a_compressed_message_cannot_inflate_past_the_limit() {
    let bomb = deflate::deflate(&vec![b'a'; 1 << 20]).unwrap();
    let got = read_all(
        &mut Reader::new(64 * 1024, true),
        &client_frame(0xC1, &bomb, true),
    );
    assert_eq!(got[0].as_ref().unwrap_err(), "message above 65536 bytes");
    let got = read_all(
        &mut Reader::new(1024, true),
        &client_frame(0xC1, &[1, 2, 3, 4, 5], true),
    );
    assert!(got[0].is_err());
}

/// A socket over an in-memory pipe, and the client's end.
fn pipe(min_deflate: Option<usize>) -> (Socket<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
    let (server, client) = tokio::io::duplex(1 << 20);
    (Socket::new(server, 64 * 1024, min_deflate), client)
}

/// Reads one server frame: (first byte, payload).
async fn server_frame(client: &mut tokio::io::DuplexStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await.unwrap();
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let len = match head[1] {
        126 => usize::from(client.read_u16().await.unwrap()),
        127 => usize::try_from(client.read_u64().await.unwrap()).unwrap(),
        n => usize::from(n),
    };
    let mut payload = vec![0; len];
    client.read_exact(&mut payload).await.unwrap();
    (head[0], payload)
}

/// A shared frame (as the broker's events are) carrying `message`.
fn frame_of(message: &str) -> Frame {
    Frame::encode_shared(&error_frame(message)).unwrap()
}

/// A frame made for one connection, carrying `message`.
fn own_of(message: &str) -> Frame {
    Frame::encode(&error_frame(message)).unwrap()
}

/// An error frame carrying `message` (any frame would do).
fn error_frame(message: &str) -> crate::protocol::ServerFrame {
    crate::protocol::ServerFrame::Error(crate::protocol::ErrorFrame {
        code: crate::protocol::ErrorCode::BadFrame,
        message: message.into(),
        topic: None,
        client_id: None,
        retry_after_ms: None,
    })
}

#[tokio::test]
async fn long_texts_go_compressed_once_and_short_ones_plain() {
    let (mut socket, mut client) = pipe(Some(128));
    let long = frame_of(&"the same words again and again ".repeat(10));
    socket.send(Out::Frame(long.clone())).await.unwrap();
    let (first, payload) = server_frame(&mut client).await;
    assert_eq!(first, 0xC1, "FIN, RSV1, text");
    assert_eq!(
        &payload[..],
        &long.deflated().unwrap()[..],
        "the frame's one compressed copy"
    );
    assert_eq!(
        deflate::inflate(&payload, 1 << 16).unwrap(),
        long.bytes().to_vec()
    );

    let short = frame_of("");
    assert!(short.bytes().len() < 128);
    socket.send(Out::Frame(short.clone())).await.unwrap();
    let (first, payload) = server_frame(&mut client).await;
    assert_eq!(first, 0x81, "FIN, text, not compressed");
    assert_eq!(&payload[..], &short.bytes()[..]);

    // A batch is joined from its frames' shared compressed forms (short
    // ones stored as they are): one valid message, nothing compressed again.
    let frames = vec![
        long.clone(),
        short.clone(),
        frame_of(&"more words, more words ".repeat(8)),
    ];
    socket.send(Out::Batch(frames.clone())).await.unwrap();
    let (first, payload) = server_frame(&mut client).await;
    assert_eq!(first, 0xC1);
    let batch = crate::server::realtime::frame::batch_text(&frames);
    assert_eq!(deflate::inflate(&payload, 1 << 16).unwrap(), batch);
    assert!(payload.len() < batch.len());
    // A batch too short to compress goes plain.
    socket
        .send(Out::Batch(vec![short.clone(), short.clone()]))
        .await
        .unwrap();
    let (first, payload) = server_frame(&mut client).await;
    assert_eq!(first, 0x81);
    assert_eq!(
        payload,
        crate::server::realtime::frame::batch_text(&[short.clone(), short])
    );
}

#[tokio::test]
async fn a_frame_for_one_connection_is_compressed_only_when_large() {
    let (mut socket, mut client) = pipe(Some(128));
    let medium = own_of(&"the same words again and again ".repeat(10));
    assert!(medium.bytes().len() >= 128 && medium.bytes().len() < 1024);
    socket.send(Out::Frame(medium)).await.unwrap();
    assert_eq!(
        server_frame(&mut client).await.0,
        0x81,
        "not worth compressing for one"
    );
    let large = own_of(&"the same words again and again ".repeat(40));
    socket.send(Out::Frame(large.clone())).await.unwrap();
    let (first, payload) = server_frame(&mut client).await;
    assert_eq!(first, 0xC1);
    assert_eq!(
        deflate::inflate(&payload, 1 << 16).unwrap(),
        large.bytes().to_vec()
    );
    // A catch-up page: one connection's frames, compressed in one go.
    let page: Vec<Frame> = (0..30)
        .map(|i| own_of(&format!("event {i} of the page, words words")))
        .collect();
    socket.send(Out::Batch(page.clone())).await.unwrap();
    let (first, payload) = server_frame(&mut client).await;
    assert_eq!(first, 0xC1);
    let text = crate::server::realtime::frame::batch_text(&page);
    assert_eq!(deflate::inflate(&payload, 1 << 16).unwrap(), text);
    assert!(
        payload.len() * 3 < text.len(),
        "{} of {}",
        payload.len(),
        text.len()
    );
}

#[tokio::test]
async fn without_compression_agreed_nothing_is_compressed() {
    let (mut socket, mut client) = pipe(None);
    let long = frame_of(&"the same words again and again ".repeat(10));
    socket.send(Out::Frame(long.clone())).await.unwrap();
    let (first, payload) = server_frame(&mut client).await;
    assert_eq!(first, 0x81);
    assert_eq!(&payload[..], &long.bytes()[..]);
}

#[tokio::test]
async fn pings_are_answered_and_a_close_echoed() {
    let (mut socket, mut client) = pipe(None);
    client
        .write_all(&client_frame(0x89, b"abc", true))
        .await
        .unwrap();
    assert!(matches!(socket.next().await, Some(Ok(Message::Ping(_)))));
    let mut body = 1000u16.to_be_bytes().to_vec();
    body.extend_from_slice(b"done");
    client
        .write_all(&client_frame(0x88, &body, true))
        .await
        .unwrap();
    assert!(matches!(socket.next().await, Some(Ok(Message::Close(Some(f)))) if f.code == 1000));
    socket.close().await.unwrap();
    assert_eq!(server_frame(&mut client).await, (0x8A, b"abc".to_vec()));
    assert_eq!(server_frame(&mut client).await, (0x88, vec![0x03, 0xe8]));
    // Nothing may be written after the Close.
    assert!(socket.send(Out::Ping).await.is_err());
}

#[tokio::test]
async fn a_close_carries_its_code_and_a_reason_cut_to_fit() {
    let (mut socket, mut client) = pipe(None);
    socket
        .send(Out::Close(4401, "é".repeat(100)))
        .await
        .unwrap();
    let (first, payload) = server_frame(&mut client).await;
    assert_eq!(first, 0x88);
    assert!(payload.len() <= 125);
    assert_eq!(&payload[..2], &4401u16.to_be_bytes());
    assert!(std::str::from_utf8(&payload[2..]).is_ok());
}

#[tokio::test]
async fn an_idle_socket_keeps_no_buffers() {
    let (mut socket, mut client) = pipe(Some(128));
    socket
        .send(Out::Frame(frame_of(&"x".repeat(5000))))
        .await
        .unwrap();
    let _ = server_frame(&mut client).await;
    client
        .write_all(&client_frame(0x81, &[b'a'; 5000], true))
        .await
        .unwrap();
    assert!(matches!(socket.next().await, Some(Ok(Message::Text(_)))));
    assert_eq!(socket.rd.capacity(), 0);
    assert_eq!(socket.wr.capacity(), 0);
}

#[tokio::test]
async fn the_peer_going_away_ends_the_stream() {
    let (mut socket, client) = pipe(None);
    drop(client);
    assert!(socket.next().await.is_none());
    let (mut socket, mut client) = pipe(None);
    client
        .write_all(&client_frame(0x81, b"hello", true)[..4])
        .await
        .unwrap();
    drop(client);
    assert!(
        matches!(socket.next().await, Some(Err(_))),
        "cut inside a frame"
    );
}
