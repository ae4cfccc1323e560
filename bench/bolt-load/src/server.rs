//! A Bolt echo server that answers like tests/bolt/server.js: `echo(s)` returns `"<tag>:" + s`,
//! heartbeats get their ack, one-way requests nothing, any other method a SERVER_EXCEPTION.
//! Single-threaded; each connection reads what is there, answers every whole request in it and
//! writes the answers in one go, so the server is cheap next to a proxy.

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::{Buf, BytesMut};
use sluice_xprotocol::bolt::header::{CMD_HEARTBEAT, TYPE_ONEWAY, TYPE_REQUEST};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::wire;

pub struct Options {
    pub listen: SocketAddr,
    pub tag: String,
}

pub fn run(opts: Options) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", opts.listen))?;
        println!(
            "ready {}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let tag = Rc::new(opts.tag);
        loop {
            let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
            let _ = stream.set_nodelay(true);
            let tag = tag.clone();
            tokio::task::spawn_local(async move {
                if let Err(e) = serve(stream, &tag).await {
                    eprintln!("bolt-load server: connection closed: {e}");
                }
            });
        }
    })
}

async fn serve(mut stream: TcpStream, tag: &str) -> Result<(), String> {
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut wbuf = BytesMut::with_capacity(64 * 1024);
    loop {
        if rbuf.capacity() - rbuf.len() < 16 * 1024 {
            rbuf.reserve(64 * 1024);
        }
        let n = stream
            .read_buf(&mut rbuf)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(());
        }
        while let Some((fixed, len)) = wire::next_frame(&rbuf, 64 << 20)? {
            let frame = &rbuf[..len];
            match (fixed.rpc_type, fixed.cmd_code) {
                (TYPE_REQUEST, CMD_HEARTBEAT) => wire::write_heartbeat_ack(&fixed, &mut wbuf),
                (TYPE_REQUEST, _) => match wire::read_request(wire::content(&fixed, frame)) {
                    Ok(call) if call.method == b"echo" && call.arg.is_some() => {
                        let arg = call.arg.unwrap_or_default();
                        wire::write_echo_response(&fixed, &[tag.as_bytes(), b":", &arg], &mut wbuf);
                    }
                    Ok(call) => {
                        let message = format!(
                            "no such method: {} (this server has echo(String))",
                            String::from_utf8_lossy(&call.method)
                        );
                        wire::write_error_response(&fixed, &message, &mut wbuf);
                    }
                    Err(e) => wire::write_error_response(&fixed, &e, &mut wbuf),
                },
                (TYPE_ONEWAY, _) => {}
                // Responses (to nothing we sent): ignored.
                _ => {}
            }
            rbuf.advance(len);
        }
        if !wbuf.is_empty() {
            stream.write_all(&wbuf).await.map_err(|e| e.to_string())?;
            wbuf.clear();
        }
    }
}
