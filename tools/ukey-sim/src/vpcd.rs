//! The card side of vsmartcard's vpcd protocol: pcscd's vpcd driver listens
//! on a TCP port; the card connects, and every message is a 2-byte
//! big-endian length and a payload. A 1-byte payload is a control code
//! (00 power off, 01 power on, 02 reset, 04 get ATR); anything longer is a
//! command APDU answered with the response APDU. Closing the socket is
//! pulling the card; connecting again is inserting it.

use crate::SharedCard;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::linux::net::TcpStreamExt;
use std::time::Duration;

/// How the server behaves.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Append every exchange (secrets redacted) to this file.
    pub log: Option<std::path::PathBuf>,
    /// Serve one connection and return (tests); otherwise reconnect forever.
    pub once: bool,
}

fn read_msg(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    // Linux clears TCP_QUICKACK after use: without it every APDU waits for
    // a delayed ACK (~40 ms, INTEROP.md #1).
    let _ = s.set_quickack(true);
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

fn write_msg(s: &mut TcpStream, payload: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(payload.len())
        .map_err(|_| std::io::Error::new(ErrorKind::InvalidData, "too long"))?;
    let mut msg = Vec::with_capacity(payload.len() + 2);
    msg.extend_from_slice(&len.to_be_bytes());
    msg.extend_from_slice(payload);
    s.write_all(&msg)
}

/// Connect to vpcd at `addr`, retrying every 0.5 s until pcscd is up.
fn connect(addr: &str) -> TcpStream {
    let mut warned = false;
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return s;
            }
            Err(e) => {
                if !warned {
                    tracing::info!("waiting for vpcd at {addr}: {e}");
                    warned = true;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

/// Serve `card` to vpcd at `addr` until the process is stopped.
pub fn serve(card: SharedCard, addr: &str, opts: &ServeOptions) -> std::io::Result<()> {
    let mut log = match &opts.log {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        None => None,
    };
    loop {
        // Stay out while the card is "removed" (control file or fault).
        while !card.lock().unwrap_or_else(|e| e.into_inner()).is_present() {
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut stream = connect(addr);
        tracing::info!("card inserted into vpcd at {addr}");
        let outcome = serve_connection(&card, &mut stream, log.as_mut());
        drop(stream);
        match outcome {
            Ok(()) => tracing::info!("card pulled (socket closed)"),
            Err(e) => tracing::info!("vpcd connection ended: {e}"),
        }
        if opts.once {
            return Ok(());
        }
        // Out of the reader long enough for pcscd's status thread to see the
        // reader empty (it polls about every 0.4 s). pcscd 1.9.9 otherwise
        // loses track: when a client's reset fails because the card was just
        // pulled, it marks the reader empty, and if the card is back before
        // its status thread looked, that thread saw no change and the reader
        // stays "empty" with the card in it until the next pull.
        std::thread::sleep(OUT_AFTER_PULL);
    }
}

/// How long a pulled card stays out at least (see above).
const OUT_AFTER_PULL: Duration = Duration::from_millis(1500);

/// How long vpcd may stay silent on a connected card. It asks for the ATR
/// about every 0.4 s (and sends power on and the ATR request as soon as it
/// takes a card), so a longer silence means it is not serving this socket:
/// on a loaded machine it can accept a reconnection and then drop it from
/// its books without closing it, or never take it while it still holds the
/// socket of the card pulled a moment ago. Waiting for it would leave the
/// reader empty forever; reconnecting is a re-insertion, which it takes.
/// Generous, because a premature reconnection is a pull the clients see.
const SILENCE_LIMIT: Duration = Duration::from_secs(10);

/// One insertion: returns `Ok` when the card is pulled, `Err` when vpcd went away.
fn serve_connection(
    card: &SharedCard,
    stream: &mut TcpStream,
    mut log: Option<&mut std::fs::File>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(SILENCE_LIMIT))?;
    loop {
        let msg = match read_msg(stream) {
            Ok(m) => m,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(std::io::Error::new(
                    ErrorKind::TimedOut,
                    "vpcd stopped polling the card: reconnecting",
                ));
            }
            Err(e) => return Err(e),
        };
        let mut c = card.lock().unwrap_or_else(|e| e.into_inner());
        c.begin();
        let reply = match msg.as_slice() {
            [0x00] | [0x01] | [0x02] => {
                c.power_cycle();
                None
            }
            [0x04] => Some(c.atr()),
            [_] => None,
            apdu => {
                let before = c.log().len();
                match c.transmit(apdu) {
                    Ok(r) => {
                        if let (Some(f), Some(e)) = (log.as_deref_mut(), c.log().get(before)) {
                            let _ = writeln!(
                                f,
                                "> {}\n< {}",
                                hex::encode_upper(&e.command),
                                hex::encode_upper(&e.response)
                            );
                        }
                        // The file is the log here; keep memory flat on long runs.
                        c.clear_log();
                        Some(r)
                    }
                    Err(_) => {
                        c.end();
                        return Ok(());
                    }
                }
            }
        };
        let present = c.present;
        c.end();
        drop(c);
        if !present {
            return Ok(());
        }
        if let Some(r) = reply {
            write_msg(stream, &r)?;
        }
    }
}
