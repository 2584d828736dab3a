//! Seed files from real exchanges: a pcscd APDU log (`pcscd -a`, lines
//! `APDU: 00 A4 ...` and `SW: ... 90 00`) of a client session against
//! `ukey-sim`, cut into inputs for every target. `fuzz/record-corpus`
//! records the sessions and calls `examples/make_corpus.rs`, which uses
//! this module.

use crate::frames;
use crate::sim::{self, Start};
use apdu::piv::{
    Algorithm, ImportKey, ManagementKey, ObjectId, Pin, PinPolicy, ProtectedManagementKey,
    PublicKey, Slot, TouchPolicy,
};
use apdu::transport::{Link, TransportError};
use apdu::{tlv, ParsedCommand, Session};
use ukey_sim::keys::PrivateKey;
use ukey_sim::SimCard;

/// One command and the card's raw answer, as pcscd logged them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub command: Vec<u8>,
    pub response: Vec<u8>,
}

fn hex_after(line: &str, marker: &str) -> Option<Vec<u8>> {
    let (_, rest) = line.split_once(marker)?;
    let text: String = rest.split_whitespace().collect();
    hex::decode(text).ok()
}

/// The exchanges in a pcscd log, in order.
pub fn parse_pcscd_log(text: &str) -> Vec<Exchange> {
    let mut out = Vec::new();
    let mut pending: Option<Vec<u8>> = None;
    for line in text.lines() {
        if let Some(cmd) = hex_after(line, " APDU: ") {
            pending = Some(cmd);
        } else if let Some(resp) = hex_after(line, " SW: ") {
            if let Some(command) = pending.take() {
                out.push(Exchange {
                    command,
                    response: resp,
                });
            }
        }
    }
    out
}

/// The ATRs a pcscd log shows (`Card ATR: 3B ...`).
pub fn atrs_in_pcscd_log(text: &str) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = text
        .lines()
        .filter_map(|l| hex_after(l, "Card ATR: "))
        .collect();
    v.dedup();
    v
}

/// A link to an in-process card that records every exchange, unredacted.
struct Recorder {
    card: SimCard,
    log: Vec<Exchange>,
}

impl Link for Recorder {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let response = self.card.transmit(apdu)?;
        self.log.push(Exchange {
            command: apdu.to_vec(),
            response: response.clone(),
        });
        Ok(response)
    }
}

/// A session of this project's own host code (`apdu::Session`, as the
/// module and the CLI use it) with the fuzz demo token ([`Start::Demo`]) in
/// process: what no packaged client sends — GET METADATA, the PIN-protected
/// management key, key generation in retired slots, MOVE KEY, ATTEST, ECDH,
/// extended length. Its exchanges are seeds like a recorded pcscd log's.
pub fn own_host_session() -> Vec<Exchange> {
    let card = SimCard::new(sim::state(Start::Demo).persistent.clone());
    let mut rec = Recorder {
        card,
        log: Vec::new(),
    };
    let pin = Pin::new(b"123456").expect("PIN");
    // Results do not matter: the exchanges do (some answers are errors).
    let mut s = Session::new(&mut rec, false);
    let _ = s.select();
    let _ = s.version();
    let _ = s.serial();
    let _ = s.pin_status();
    let mut points = Vec::new();
    for r in [0x80, 0x81, 0x9B, 0x9A, 0x9C, 0x9D, 0x9E, 0x82] {
        if let Ok(md) = s.metadata(r) {
            if let Some(PublicKey::Ec { point, .. }) = md.public_key {
                points.push(point);
            }
        }
    }
    let _ = s.get_data(ObjectId::ADMIN_DATA);
    let _ = s.get_data_opt(ObjectId::KEY_HISTORY);
    let _ = s.verify_pin(&pin);
    let _ = s.sign_raw(Slot::Authentication, Algorithm::EccP256, &[0x5A; 32]);
    if let Some(p) = points.iter().find(|p| p.len() == 65) {
        let _ = s.ecdh(Slot::CardAuthentication, Algorithm::EccP256, p);
    }
    let _ = s.verify_pin(&pin);
    let _ = s.sign_raw(Slot::Signature, Algorithm::EccP384, &[0xA5; 48]);
    let mut block = vec![0x00, 0x01];
    block.resize(127, 0xFF);
    block.push(0x00);
    let _ = s.sign_raw(Slot::KeyManagement, Algorithm::Rsa1024, &block);
    let _ = s.get_challenge(8);
    let key = s
        .get_data(ObjectId::PRINTED_INFORMATION)
        .ok()
        .and_then(|c| ProtectedManagementKey::parse(&c).ok())
        .and_then(|k| ManagementKey::new(Algorithm::Aes192, &k.key).ok());
    if let Some(key) = key {
        let _ = s.authenticate(&key);
        let _ = s.generate(
            Slot::Retired(1),
            Algorithm::EccP256,
            PinPolicy::Once,
            TouchPolicy::Never,
        );
        let _ = s.generate(
            Slot::Retired(2),
            Algorithm::EccP384,
            PinPolicy::Default,
            TouchPolicy::Default,
        );
        let _ = s.put_data(ObjectId::KEY_HISTORY, &hex_lit("C10101C20100FE00"));
        let _ = s.move_key(Slot::Retired(3), Slot::Retired(1));
        let _ = s.delete_key(Slot::Retired(3));
        let _ = s.attest(Slot::Retired(2));
        let _ = s.delete_data(ObjectId::KEY_HISTORY);
        if let Ok(PrivateKey::Rsa(k)) = PrivateKey::generate(Algorithm::Rsa1024) {
            use rsa::traits::PrivateKeyParts;
            let part = |v: Option<rsa::BigUint>| v.map(|v| v.to_bytes_be()).unwrap_or_default();
            let (p, q) = (k.primes()[0].to_bytes_be(), k.primes()[1].to_bytes_be());
            let (dp, dq) = (part(k.dp().cloned()), part(k.dq().cloned()));
            let qinv = k
                .crt_coefficient()
                .map(|c| c.to_bytes_be())
                .unwrap_or_default();
            let _ = s.import_key(
                Slot::Retired(4),
                Algorithm::Rsa1024,
                &ImportKey::Rsa {
                    p: &p,
                    q: &q,
                    dp: &dp,
                    dq: &dq,
                    qinv: &qinv,
                },
                PinPolicy::Always,
                TouchPolicy::Never,
            );
        }
        // A long object: chained here, one extended APDU below.
        let _ = s.put_data(ObjectId::FINGERPRINTS, &[0x42; 600]);
    }
    let _ = s.change_reference(
        apdu::piv::PinRef::Puk,
        &Pin::new(b"12345678").expect("PUK"),
        &Pin::new(b"12345678").expect("PUK"),
    );
    let _ = s.logout();
    let _ = s.reset_application();
    let mut s = Session::new(&mut rec, true);
    let _ = s.get_data(ObjectId::CERT_9A);
    let _ = s.verify_pin(&pin);
    let _ = s.get_data(ObjectId::FINGERPRINTS);
    rec.log
}

fn hex_lit(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex literal")
}

/// One host operation: a command (its chained pieces joined) with every
/// answer the card gave it, including those to GET RESPONSE and to resends
/// after `6Cxx`.
#[derive(Debug, Clone)]
pub struct Operation {
    /// The first APDU of the operation, as sent.
    pub first: Vec<u8>,
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    /// The command data, chained pieces joined.
    pub data: Vec<u8>,
    pub le: Option<usize>,
    pub extended: bool,
    /// Every answer, in order.
    pub answers: Vec<Vec<u8>>,
    /// The response data, GET RESPONSE pieces joined, and the last status.
    pub response: Vec<u8>,
    pub sw: u16,
}

/// Group exchanges into operations.
pub fn operations(exchanges: &[Exchange]) -> Vec<Operation> {
    let mut ops: Vec<Operation> = Vec::new();
    // Whether the last operation may continue (chaining, 61xx, 6Cxx).
    let mut open = false;
    for ex in exchanges {
        let Ok(p) = ParsedCommand::parse(&ex.command) else {
            continue;
        };
        let sw = match ex.response[..] {
            [.., a, b] => u16::from_be_bytes([a, b]),
            _ => continue,
        };
        let body = &ex.response[..ex.response.len() - 2];
        let continues = open
            && ops.last().is_some_and(|op| {
                let last_sw = op.sw;
                (p.ins == 0xC0 && last_sw >> 8 == 0x61)
                    || (last_sw >> 8 == 0x6C && ex.command[..4] == op.first[..4])
                    || (op.cla & 0x10 != 0 && (p.ins, p.p1, p.p2) == (op.ins, op.p1, op.p2))
            });
        if continues {
            let op = ops.last_mut().expect("checked");
            if op.cla & 0x10 != 0 && p.ins != 0xC0 {
                op.data.extend_from_slice(p.data);
                op.cla = p.cla;
                op.le = p.le;
            }
            if sw >> 8 != 0x6C {
                op.response.extend_from_slice(body);
            }
            op.answers.push(ex.response.clone());
            op.sw = sw;
        } else {
            ops.push(Operation {
                first: ex.command.clone(),
                cla: p.cla,
                ins: p.ins,
                p1: p.p1,
                p2: p.p2,
                data: p.data.to_vec(),
                le: p.le,
                extended: p.extended,
                answers: vec![ex.response.clone()],
                response: if sw >> 8 == 0x6C {
                    Vec::new()
                } else {
                    body.to_vec()
                },
                sw,
            });
        }
        let op = ops.last().expect("pushed");
        open = op.cla & 0x10 != 0 || op.sw >> 8 == 0x61 || op.sw >> 8 == 0x6C;
    }
    ops
}

/// A seed: target, a name for the file, the bytes, and what kind of input
/// it is (the corpus keeps one of each kind before any second one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub target: &'static str,
    pub name: String,
    pub data: Vec<u8>,
    pub kind: String,
}

fn seed(target: &'static str, name: String, data: Vec<u8>, kind: String) -> Seed {
    Seed {
        target,
        name,
        data,
        kind,
    }
}

/// Index of `alg` in `Algorithm::ALL` (how `piv_objects` picks an algorithm).
fn alg_index(alg: Algorithm) -> u8 {
    Algorithm::ALL.iter().position(|a| *a == alg).unwrap_or(0) as u8
}

/// The `piv_objects` selector for the content of a GET DATA object.
fn object_parser(obj: ObjectId) -> Option<u8> {
    Some(match obj {
        ObjectId::CHUID => 2,
        ObjectId::CARD_CAPABILITY_CONTAINER => 3,
        ObjectId::KEY_HISTORY => 4,
        ObjectId::DISCOVERY => 5,
        ObjectId::ADMIN_DATA => 6,
        ObjectId::PRINTED_INFORMATION => 7,
        o if o.cert_slot().is_some() => 1,
        _ => return None,
    })
}

/// Every seed one recorded session gives (`session` names the files).
pub fn session_seeds(session: &str, start: Start, exchanges: &[Exchange]) -> Vec<Seed> {
    let mut seeds = Vec::new();

    // sim_dispatcher: the whole session as vpcd would pass it on, starting
    // with a power-on; management key authentication becomes the harness's
    // `9B` control (the card's witness is random: a replay cannot pass).
    let mut stream = vec![start.to_byte()];
    frames::push(&mut stream, &[0x01]);
    for ex in exchanges {
        let c = &ex.command;
        if c.get(1) == Some(&0x87) && c.get(3) == Some(&0x9B) {
            if c.get(5..9) == Some(&[0x7C, 0x02, 0x80, 0x00][..]) {
                frames::push(&mut stream, &[0x9B]);
            }
            continue;
        }
        frames::push(&mut stream, c);
    }
    seeds.push(seed(
        "sim_dispatcher",
        session.to_string(),
        stream,
        session.to_string(),
    ));

    for (i, op) in operations(exchanges).iter().enumerate() {
        let name = |what: &str| format!("{session}-{i:03}-{what}");
        let shape = format!(
            "{:02X}{:02X}{:02X}-{}{}{}",
            op.ins,
            op.p1,
            op.p2,
            if op.extended { "E" } else { "S" },
            if op.data.is_empty() { "" } else { "D" },
            if op.le.is_some() { "L" } else { "" },
        );
        // command_apdu: the APDU as sent.
        seeds.push(seed(
            "command_apdu",
            name("command"),
            op.first.clone(),
            shape.clone(),
        ));

        // response: the command's shape and the card's answers.
        let mut flags = 0u8;
        if op.extended {
            flags |= 0x01;
        }
        let le = op
            .le
            .map(|le| if le >= 256 && !op.extended { 0 } else { le });
        if le.is_some() {
            flags |= 0x02;
        }
        let le = u16::try_from(le.unwrap_or(0) % 65_536).unwrap_or(0);
        let len = u16::try_from(op.data.len()).unwrap_or(u16::MAX);
        let mut r = vec![flags, op.cla & !0x10, op.ins, op.p1, op.p2];
        r.extend_from_slice(&le.to_be_bytes());
        r.extend_from_slice(&len.to_be_bytes());
        for a in &op.answers {
            frames::push(&mut r, a);
        }
        seeds.push(seed(
            "response",
            name("answers"),
            r,
            format!("{:02X}-{}-{:04X}", op.ins, op.answers.len().min(3), op.sw),
        ));

        // tlv: TLV-structured command data and response data.
        for (what, bytes) in [("command-data", &op.data), ("response-data", &op.response)] {
            if !bytes.is_empty() && tlv::parse_all(bytes).is_ok() {
                seeds.push(seed(
                    "tlv",
                    name(what),
                    bytes.clone(),
                    format!("{shape}-{what}"),
                ));
            }
        }

        if op.sw != 0x9000 || op.response.is_empty() {
            continue;
        }
        // piv_objects: the parser the host would use on this answer.
        let mut objects = |selector: u8, content: &[u8]| {
            let mut v = vec![selector];
            v.extend_from_slice(content);
            let kind = format!("{selector}-{}", content.first().copied().unwrap_or(0));
            seeds.push(seed("piv_objects", name("object"), v, kind));
        };
        match op.ins {
            0xA4 => objects(0, &op.response),
            0xCB => {
                let Some(obj) = tlv::find(&op.data, 0x5Cu32)
                    .ok()
                    .flatten()
                    .filter(|t| t.len() <= 3)
                    .map(|t| ObjectId(t.iter().fold(0, |a, b| (a << 8) | u32::from(*b))))
                else {
                    continue;
                };
                let outer = if obj == ObjectId::DISCOVERY {
                    0x7E
                } else {
                    0x53
                };
                if let (Some(sel), Ok(content)) =
                    (object_parser(obj), tlv::unwrap(&op.response, outer))
                {
                    objects(sel, content);
                }
            }
            0x47 => {
                let alg = tlv::unwrap(&op.data, 0xACu32)
                    .ok()
                    .and_then(|t| tlv::find(t, 0x80u32).ok().flatten())
                    .and_then(|a| a.first().copied())
                    .and_then(Algorithm::from_code);
                if let Some(alg) = alg {
                    let mut v = vec![alg_index(alg)];
                    v.extend_from_slice(&op.response);
                    objects(9, &v);
                }
            }
            0xF7 => objects(10, &op.response),
            _ => {}
        }
    }
    seeds
}

/// At most `per_target` seeds per target, no two alike: first one of each
/// kind, in order, then more of the kinds already there.
pub fn select(seeds: Vec<Seed>, per_target: usize) -> Vec<Seed> {
    let mut kept: Vec<Seed> = Vec::new();
    for first_of_kind in [true, false] {
        for s in &seeds {
            let same_target = kept.iter().filter(|k| k.target == s.target).count();
            let dup = kept
                .iter()
                .any(|k| k.target == s.target && (k.data == s.data || k.name == s.name));
            let kind_seen = kept
                .iter()
                .any(|k| k.target == s.target && k.kind == s.kind);
            if same_target < per_target && !dup && (!first_of_kind || !kind_seen) {
                kept.push(s.clone());
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
00000001 APDU: 00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00 \n\
00000062 SW: 61 11 4F 06 00 00 10 00 01 00 79 07 4F 05 A0 00 00 03 08 90 00 \n\
00000001 APDU: 00 CB 3F FF 03 5C 01 7E 08 \n\
00000016 SW: 7E 12 4F 0B A0 00 00 03 61 0C \n\
00000001 APDU: 00 C0 00 00 0C \n\
00000016 SW: 08 00 00 10 00 01 00 5F 2F 02 40 00 90 00 \n\
00000001 APDU: 00 87 03 9B 04 7C 02 80 00 00 \n\
00000016 SW: 7C 0A 80 08 01 02 03 04 05 06 07 08 90 00 \n";

    #[test]
    fn log_to_operations_and_seeds() {
        let ex = parse_pcscd_log(LOG);
        assert_eq!(ex.len(), 4);
        let ops = operations(&ex);
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[1].answers.len(), 2);
        assert_eq!(
            ops[1].response,
            hex::decode("7E124F0BA0000003080000100001005F2F024000").unwrap()
        );
        let seeds = session_seeds("t", Start::Demo, &ex);
        let stream = &seeds[0];
        assert_eq!(stream.target, "sim_dispatcher");
        let frames: Vec<_> = frames::Frames::new(&stream.data[1..]).collect();
        assert_eq!(frames.len(), 5, "power on, 3 APDUs, the 9B control");
        assert_eq!(frames[4], [0x9B]);
        assert!(seeds
            .iter()
            .any(|s| s.target == "piv_objects" && s.data[0] == 5));
        for s in &seeds {
            let run = crate::TARGETS
                .iter()
                .find(|(n, _)| *n == s.target)
                .expect("target")
                .1;
            if s.target != "sim_dispatcher" {
                run(&s.data);
            }
        }
    }
}
