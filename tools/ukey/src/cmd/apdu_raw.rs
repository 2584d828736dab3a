//! `ukey apdu HEX...`: raw command APDUs, sent in one transaction as they
//! are (long responses collected with GET RESPONSE), with the responses.
//! PIN, PUK and key material are redacted in what is printed, as in traces.

use super::Ctx;
use crate::error::{CliError, Result};
use apdu::{Command, ParsedCommand, StatusWord};
use serde::Serialize;
use zeroize::Zeroizing;

#[derive(Serialize)]
struct Exchange {
    command: String,
    response: String,
    sw: String,
    status: String,
}

/// Whether a command's data field carries a secret (PIN, PUK, management
/// key, private key, or the PIN-protected management key in PRINTED).
fn secret_data(ins: u8, p2: u8, data: &[u8]) -> bool {
    match ins {
        0x20 | 0x24 | 0x2C | 0xFE | 0xFF => true,
        0x87 => p2 == 0x9B,
        0xDB => data.starts_with(&[0x5C, 0x03, 0x5F, 0xC1, 0x09]),
        _ => false,
    }
}

/// Whether a command's response carries a secret.
fn secret_response(ins: u8, p2: u8, data: &[u8]) -> bool {
    match ins {
        0x87 => p2 == 0x9B,
        0xCB => data.starts_with(&[0x5C, 0x03, 0x5F, 0xC1, 0x09]),
        _ => false,
    }
}

fn parse(arg: &str) -> Result<(Command, Zeroizing<Vec<u8>>)> {
    let clean: Zeroizing<String> = Zeroizing::new(
        arg.chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect(),
    );
    let raw = Zeroizing::new(
        hex::decode(clean.as_bytes())
            .map_err(|_| CliError::new(format!("argument {arg:?} is not hex")))?,
    );
    let p = ParsedCommand::parse(&raw)
        .map_err(|_| CliError::new(format!("argument {arg:?} is not a command APDU")))?;
    let mut cmd = Command::new(p.cla, p.ins, p.p1, p.p2).with_data(p.data.to_vec());
    if let Some(le) = p.le {
        cmd = cmd.with_le(le);
    }
    if secret_data(p.ins, p.p2, p.data) {
        cmd = cmd.secret_data();
    }
    if secret_response(p.ins, p.p2, p.data) {
        cmd = cmd.secret_response();
    }
    Ok((cmd, raw))
}

fn shown_command(cmd: &Command, raw: &[u8]) -> String {
    if cmd.data_sensitivity == apdu::Sensitivity::Secret && !cmd.data.is_empty() {
        format!(
            "{} [{} bytes redacted]",
            hex::encode_upper(&raw[..4]),
            raw.len() - 4
        )
    } else {
        hex::encode_upper(raw)
    }
}

pub fn run(ctx: &Ctx, args: &[String]) -> Result<()> {
    let cmds = args.iter().map(|a| parse(a)).collect::<Result<Vec<_>>>()?;
    let mut t = ctx.token()?;
    let exchanges = t.txn(|s| {
        let mut v = Vec::new();
        for (cmd, raw) in &cmds {
            let r = s.transmit(cmd)?;
            let response =
                if cmd.response_sensitivity == apdu::Sensitivity::Secret && !r.data.is_empty() {
                    format!("[{} bytes redacted]", r.data.len())
                } else {
                    hex::encode_upper(&r.data[..])
                };
            v.push(Exchange {
                command: shown_command(cmd, raw),
                response,
                sw: format!("{:04X}", r.sw.to_u16()),
                status: describe(r.sw),
            });
        }
        Ok(v)
    })?;
    #[derive(Serialize)]
    struct Report<'a> {
        exchanges: &'a [Exchange],
    }
    ctx.out.emit(
        &Report {
            exchanges: &exchanges,
        },
        || {
            let mut s = String::new();
            for e in &exchanges {
                s += &format!(
                    ">> {}\n<< {}{}{} ({})\n",
                    e.command,
                    e.response,
                    if e.response.is_empty() { "" } else { " " },
                    e.sw,
                    e.status
                );
            }
            s
        },
    )
}

fn describe(sw: StatusWord) -> String {
    match sw {
        StatusWord::VerifyFailed { tries_left } => {
            format!("verification failed, {tries_left} tries left")
        }
        other => other.describe().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_is_redacted() {
        let (cmd, raw) = parse("00 20 00 80 08 31 32 33 34 35 36 FF FF").unwrap();
        let shown = shown_command(&cmd, &raw);
        assert_eq!(shown, "00200080 [9 bytes redacted]");
        let (cmd, raw) = parse("00A4040005A000000308").unwrap();
        assert_eq!(shown_command(&cmd, &raw), "00A4040005A000000308");
        assert!(
            parse("00 CB 3F FF 05 5C 03 5F C1 09 00")
                .unwrap()
                .0
                .response_sensitivity
                == apdu::Sensitivity::Secret
        );
        assert!(parse("xyz").is_err());
        assert!(parse("00").is_err());
    }
}
