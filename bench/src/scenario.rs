//! The client call sequences, identical for every module: the APDU
//! scenarios of issue 7 and the "first signature" cycle a fresh process runs.

use crate::apdulog::{Counters, Traffic};
use crate::p11::{self, Attr, Mech, Module};
use crate::record::Record;
use crate::tokens::{ID_9A_RSA, ID_9C_P256, ID_9E_P256};
use cryptoki_sys::*;
use std::path::Path;
use std::time::Instant;

pub const PIN: &str = "123456";

/// Repetitions of the "many" steps.
pub const REPEATED_SIGNS: u64 = 100;
pub const POLLS: u64 = 100;

fn e2s<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e}")
}

/// Records each step's traffic.
struct Steps<'a> {
    counters: Counters,
    card: &'a str,
    module: &'a str,
    out: Vec<Record>,
}

impl Steps<'_> {
    fn mark(&mut self, step: &str, reps: u64) {
        let (t, pcscd) = self.counters.take();
        self.push(step, reps, t, pcscd);
    }

    fn push(&mut self, step: &str, reps: u64, t: Traffic, pcscd: Option<u64>) {
        self.out.push(Record::Apdu {
            card: self.card.into(),
            module: self.module.into(),
            step: step.into(),
            reps,
            apdus: t.apdus,
            bytes: t.bytes,
            pcscd_apdus: pcscd,
            ins: t.ins,
        });
    }
}

/// First slot with a token.
fn first_slot(m: &Module) -> Result<CK_SLOT_ID, String> {
    m.slots(true)
        .map_err(e2s("C_GetSlotList"))?
        .first()
        .copied()
        .ok_or_else(|| "no slot with a token".to_string())
}

/// The scenarios on the card behind pcscd (card index 0), in one
/// process: each step's APDUs are what the card logged during it. Steps
/// whose key the card lacks are skipped.
pub fn apdu_scenarios(module_path: &Path, module: &str, card: &str) -> Result<Vec<Record>, String> {
    let mut steps = Steps {
        counters: Counters::from_env(0)?,
        card,
        module,
        out: Vec::new(),
    };
    let m = Module::load(module_path)?;
    m.initialize().map_err(e2s("C_Initialize"))?;
    let slot = first_slot(&m)?;
    m.token_info(slot).map_err(e2s("C_GetTokenInfo"))?;
    steps.mark("init", 1);

    let h = m.open(slot, false).map_err(e2s("C_OpenSession"))?;
    steps.mark("open", 1);

    let objects = m.find(h, &[]).map_err(e2s("C_FindObjects"))?;
    let mut keys = Vec::new();
    for o in &objects {
        let a = m
            .attributes(h, *o, &[CKA_CLASS, CKA_ID, CKA_LABEL])
            .map_err(e2s("C_GetAttributeValue"))?;
        let class = a[0]
            .as_deref()
            .and_then(|v| v.try_into().ok())
            .map(CK_ULONG::from_ne_bytes);
        if class == Some(CKO_PRIVATE_KEY) {
            keys.push((a[1].clone().unwrap_or_default(), *o));
        }
    }
    steps.mark("objects", 1);

    m.login(h, CKU_USER, PIN).map_err(e2s("C_Login"))?;
    steps.mark("login", 1);

    // Private keys listed before login are public-session objects only
    // (9E); look them up again now that the user is logged in.
    let key = |id: u8| -> Result<Option<CK_OBJECT_HANDLE>, String> {
        if let Some((_, h)) = keys.iter().find(|(kid, _)| kid[..] == [id]) {
            return Ok(Some(*h));
        }
        Ok(m.find(h, &[Attr::class(CKO_PRIVATE_KEY), Attr::id(&[id])])
            .map_err(e2s("C_FindObjects"))?
            .first()
            .copied())
    };
    let k9a = key(ID_9A_RSA)?;
    let k9c = key(ID_9C_P256)?;
    let k9e = key(ID_9E_P256)?;
    steps.mark("find-keys", 1);

    let mut sig = [0u8; 512];
    let (ec_in, rsa_in) = (Mech::Ecdsa.input(), Mech::Rsa.input());
    if let Some(k) = k9e {
        p11::sign_once(&m, h, k, Mech::Ecdsa, &ec_in, &mut sig).map_err(e2s("ECDSA sign"))?;
        steps.mark("sign-ecdsa", 1);
    }
    if let Some(k) = k9a {
        p11::sign_once(&m, h, k, Mech::Rsa, &rsa_in, &mut sig).map_err(e2s("RSA sign"))?;
        steps.mark("sign-rsa", 1);
    }
    if let Some(k) = k9c {
        m.sign_init(h, Mech::Ecdsa.ckm(), k)
            .map_err(e2s("C_SignInit"))?;
        m.login(h, CKU_CONTEXT_SPECIFIC, PIN)
            .map_err(e2s("C_Login(CKU_CONTEXT_SPECIFIC)"))?;
        m.sign(h, &ec_in, &mut sig).map_err(e2s("C_Sign"))?;
        steps.mark("sign-ecdsa-always", 1);
    }
    if let Some(k) = k9a {
        for _ in 0..REPEATED_SIGNS {
            p11::sign_once(&m, h, k, Mech::Rsa, &rsa_in, &mut sig).map_err(e2s("RSA sign"))?;
        }
        steps.mark("sign-rsa-many", REPEATED_SIGNS);
    }
    if let Some(k) = k9e {
        for _ in 0..REPEATED_SIGNS {
            p11::sign_once(&m, h, k, Mech::Ecdsa, &ec_in, &mut sig).map_err(e2s("ECDSA sign"))?;
        }
        steps.mark("sign-ecdsa-many", REPEATED_SIGNS);
    }
    for _ in 0..POLLS {
        let slots = m.slots(true).map_err(e2s("C_GetSlotList"))?;
        m.token_info(slots[0]).map_err(e2s("C_GetTokenInfo"))?;
        m.session_info(h).map_err(e2s("C_GetSessionInfo"))?;
    }
    steps.mark("poll", POLLS);

    m.close(h).map_err(e2s("C_CloseSession"))?;
    m.finalize().map_err(e2s("C_Finalize"))?;
    steps.mark("teardown", 1);
    Ok(steps.out)
}

/// What a fresh client process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cycle {
    /// C_Initialize, C_GetSlotList, C_GetTokenInfo, C_OpenSession, C_Login,
    /// find the private key by CKA_ID 01, C_SignInit + C_Sign (RSA-2048).
    FirstSign,
    /// C_Initialize, C_GetSlotList, C_GetTokenInfo, C_OpenSession, find all
    /// objects and read CKA_CLASS/ID/LABEL of each.
    List,
}

impl Cycle {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "first-sign" => Some(Cycle::FirstSign),
            "list" => Some(Cycle::List),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Cycle::FirstSign => "first-sign",
            Cycle::List => "list",
        }
    }
}

/// Times of one cycle, µs from before the module is loaded.
#[derive(Debug, Clone)]
pub struct CycleTimes {
    /// Up to the result (the signature, or the last attribute).
    pub done_us: f64,
    /// Including C_CloseSession and C_Finalize.
    pub total_us: f64,
    /// Where the time up to the result went: (phase, µs).
    pub phases: Vec<(&'static str, f64)>,
}

/// Marks the end of each phase of a cycle.
struct Phases {
    last: Instant,
    out: Vec<(&'static str, f64)>,
}

impl Phases {
    fn mark(&mut self, name: &'static str) {
        let now = Instant::now();
        self.out
            .push((name, now.duration_since(self.last).as_secs_f64() * 1e6));
        self.last = now;
    }
}

/// Run one cycle in this (fresh) process. With `counters`, the traffic up
/// to the result and of the teardown are recorded as two steps.
pub fn cycle(
    module_path: &Path,
    what: Cycle,
    mut counters: Option<(Counters, &str, &str)>,
) -> Result<(CycleTimes, Vec<Record>), String> {
    let t0 = Instant::now();
    let mut ph = Phases {
        last: t0,
        out: Vec::new(),
    };
    let m = Module::load(module_path)?;
    ph.mark("dlopen");
    m.initialize().map_err(e2s("C_Initialize"))?;
    ph.mark("C_Initialize");
    let slot = first_slot(&m)?;
    m.token_info(slot).map_err(e2s("C_GetTokenInfo"))?;
    ph.mark("C_GetSlotList + C_GetTokenInfo");
    let h = m.open(slot, false).map_err(e2s("C_OpenSession"))?;
    match what {
        Cycle::FirstSign => {
            m.login(h, CKU_USER, PIN).map_err(e2s("C_Login"))?;
            ph.mark("C_OpenSession + C_Login");
            let key = p11::private_key(&m, h, ID_9A_RSA)?;
            ph.mark("find the key");
            let mut sig = [0u8; 512];
            p11::sign_once(&m, h, key, Mech::Rsa, &Mech::Rsa.input(), &mut sig)
                .map_err(e2s("sign"))?;
            ph.mark("C_SignInit + C_Sign");
        }
        Cycle::List => {
            ph.mark("C_OpenSession");
            for o in m.find(h, &[]).map_err(e2s("C_FindObjects"))? {
                m.attributes(h, o, &[CKA_CLASS, CKA_ID, CKA_LABEL])
                    .map_err(e2s("C_GetAttributeValue"))?;
            }
            ph.mark("find all + attributes");
        }
    }
    let done = t0.elapsed();
    let mut out = Vec::new();
    let mut rec = |step: String, c: &mut (Counters, &str, &str)| {
        let (t, pcscd) = c.0.take();
        out.push(Record::Apdu {
            card: c.1.into(),
            module: c.2.into(),
            step,
            reps: 1,
            apdus: t.apdus,
            bytes: t.bytes,
            pcscd_apdus: pcscd,
            ins: t.ins,
        });
    };
    if let Some(c) = counters.as_mut() {
        rec(what.name().to_string(), c);
    }
    m.close(h).map_err(e2s("C_CloseSession"))?;
    m.finalize().map_err(e2s("C_Finalize"))?;
    let total = t0.elapsed();
    if let Some(c) = counters.as_mut() {
        rec(format!("{}-teardown", what.name()), c);
    }
    Ok((
        CycleTimes {
            done_us: done.as_secs_f64() * 1e6,
            total_us: total.as_secs_f64() * 1e6,
            phases: ph.out,
        },
        out,
    ))
}
