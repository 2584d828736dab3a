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
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// How long vpcd may take to speak to a freshly connected card. pcscd's
/// polling thread does that within a second on an idle machine; on a loaded
/// one it can take several, and giving up too early makes things worse (vpcd
/// then finds the socket closed and reports a pull), so be patient.
const FIRST_MESSAGE_WAIT: Duration = Duration::from_secs(10);

/// One insertion: returns `Ok` when the card is pulled, `Err` when vpcd went away.
fn serve_connection(
    card: &SharedCard,
    stream: &mut TcpStream,
    mut log: Option<&mut std::fs::File>,
) -> std::io::Result<()> {
    // vpcd talks first (power on, ATR) as soon as it takes the card. On a
    // loaded machine it may not take a reconnection at all (it still holds
    // the socket of the card pulled a moment ago): then try again rather
    // than wait forever for a reader that never polls this socket.
    stream.set_read_timeout(Some(FIRST_MESSAGE_WAIT))?;
    let mut first = true;
    loop {
        let msg = match read_msg(stream) {
            Ok(m) => m,
            Err(e) if first && matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(std::io::Error::new(
                    ErrorKind::TimedOut,
                    "vpcd did not take the card: reconnecting",
                ));
            }
            Err(e) => return Err(e),
        };
        if std::mem::take(&mut first) {
            stream.set_read_timeout(None)?;
        }
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
