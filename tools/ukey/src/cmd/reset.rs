//! `ukey reset`: factory reset of the PIV application. The card allows it
//! only with PIN and PUK both blocked; we check first and ask to confirm.

use super::{who, Ctx};
use crate::auth::{first_pin_counter, puk_counter, read_info, Counter};
use crate::error::{CliError, Result};
use crate::output;
use apdu::StatusWord;
use serde::Serialize;

#[derive(Serialize)]
struct Report {
    reset: bool,
    serial: Option<u32>,
}

fn refused(pin: Option<Counter>, puk: Option<Counter>) -> CliError {
    let show = |c: Option<Counter>| c.map_or("unknown".to_string(), |c| c.describe());
    CliError::new(format!(
        "reset refused: it is allowed only when the PIN and the PUK are both blocked \
         (PIN: {}, PUK: {}). A reset erases every key and certificate on the token",
        show(pin),
        show(puk)
    ))
}

pub fn run(ctx: &Ctx, yes: bool) -> Result<()> {
    let mut t = ctx.token()?;
    let (info, pin, puk) = t.piv(|s| {
        let info = read_info(s)?;
        let (pin, puk) = (first_pin_counter(s, &info)?, puk_counter(s, &info)?);
        Ok((info, pin, puk))
    })?;
    let pin_blocked = pin.is_some_and(|c| c.blocked());
    let puk_blocked = puk.is_some_and(|c| c.blocked());
    // Refuse on what we know; an unknown PUK counter is left to the card.
    if !pin_blocked || (puk.is_some() && !puk_blocked) {
        return Err(refused(pin, puk));
    }
    output::confirm(
        &format!(
            "Factory reset of {}: every key and certificate on it is erased for good; PIN, PUK \
             and management key go back to the factory defaults.",
            who(info.serial, &t.reader)
        ),
        "RESET",
        yes,
        "--yes",
    )?;
    t.piv(|s| match s.reset_application() {
        Ok(()) => Ok(()),
        Err(apdu::Error::Status(StatusWord::ConditionsNotSatisfied)) => Err(refused(pin, puk)),
        Err(e) => Err(e.into()),
    })?;
    let report = Report {
        reset: true,
        serial: info.serial,
    };
    ctx.out.emit(&report, || {
        "Token reset to factory defaults: PIN 123456, PUK 12345678, default management key.\n\
         Change them now: ukey pin change, ukey puk change.\n"
            .into()
    })
}
