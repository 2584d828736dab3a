//! `ukey pin verify|change|unblock` and `ukey puk change`.
//!
//! Each reads the counter first (no try spent), refuses a blocked PIN/PUK
//! with the way out, warns before the final try, asks outside the card
//! transaction, and reports every failure with the tries left.

use super::Ctx;
use crate::auth::{announce, check, first_pin_counter, puk_counter, read_info, CardInfo, Counter};
use crate::error::Result;
use crate::secrets::Kind;
use apdu::piv::PinRef;
use serde::Serialize;

#[derive(Serialize)]
struct Done {
    ok: bool,
    action: &'static str,
    serial: Option<u32>,
}

struct Counters {
    info: CardInfo,
    pin: Option<Counter>,
    puk: Option<Counter>,
}

fn counters(t: &mut crate::token::Token, want_puk: bool) -> Result<Counters> {
    t.piv(|s| {
        let info = read_info(s)?;
        let pin = first_pin_counter(s, &info)?;
        let puk = if want_puk {
            puk_counter(s, &info)?
        } else {
            None
        };
        Ok(Counters { info, pin, puk })
    })
}

fn done(ctx: &Ctx, action: &'static str, serial: Option<u32>, text: &str) -> Result<()> {
    ctx.out.emit(
        &Done {
            ok: true,
            action,
            serial,
        },
        || text.to_string(),
    )
}

pub fn verify(ctx: &mut Ctx) -> Result<()> {
    let mut t = ctx.token()?;
    let c = counters(&mut t, false)?;
    announce(Kind::Pin, c.pin.as_ref())?;
    let pin = ctx.secrets.pin(Kind::Pin)?;
    t.piv(|s| check(Kind::Pin, s.verify_pin(&pin)))?;
    done(ctx, "pin verify", c.info.serial, "PIN verified.")
}

pub fn change(ctx: &mut Ctx, new_pin: Option<String>) -> Result<()> {
    ctx.secrets.give(Kind::NewPin, new_pin);
    let mut t = ctx.token()?;
    let c = counters(&mut t, false)?;
    announce(Kind::Pin, c.pin.as_ref())?;
    let old = ctx.secrets.pin(Kind::Pin)?;
    let new = ctx.secrets.pin(Kind::NewPin)?;
    t.piv(|s| check(Kind::Pin, s.change_reference(PinRef::Pin, &old, &new)))?;
    done(ctx, "pin change", c.info.serial, "PIN changed.")
}

pub fn unblock(ctx: &mut Ctx, puk: Option<String>, new_pin: Option<String>) -> Result<()> {
    ctx.secrets.give(Kind::Puk, puk);
    ctx.secrets.give(Kind::NewPin, new_pin);
    let mut t = ctx.token()?;
    let c = counters(&mut t, true)?;
    announce(Kind::Puk, c.puk.as_ref())?;
    let puk = ctx.secrets.pin(Kind::Puk)?;
    let new = ctx.secrets.pin(Kind::NewPin)?;
    t.piv(|s| check(Kind::Puk, s.unblock_pin(&puk, &new)))?;
    let was = match c.pin {
        Some(p) if p.blocked() => "PIN unblocked and set",
        _ => "PIN set with the PUK",
    };
    done(
        ctx,
        "pin unblock",
        c.info.serial,
        &format!("{was}; its tries are reset."),
    )
}

pub fn change_puk(ctx: &mut Ctx, puk: Option<String>, new_puk: Option<String>) -> Result<()> {
    ctx.secrets.give(Kind::Puk, puk);
    ctx.secrets.give(Kind::NewPuk, new_puk);
    let mut t = ctx.token()?;
    let c = counters(&mut t, true)?;
    announce(Kind::Puk, c.puk.as_ref())?;
    let old = ctx.secrets.pin(Kind::Puk)?;
    let new = ctx.secrets.pin(Kind::NewPuk)?;
    t.piv(|s| check(Kind::Puk, s.change_reference(PinRef::Puk, &old, &new)))?;
    done(ctx, "puk change", c.info.serial, "PUK changed.")
}
