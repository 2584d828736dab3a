//! A card, whatever its application: a [`Transport`] with the length mode
//! its ATR announced, and [`Card::transaction`], which runs a closure with a
//! [`CardSession`] under one exclusive transaction. A session sends any
//! command; chaining, GET RESPONSE (61xx) and a wrong Le (6Cxx) are handled
//! below it ([`crate::transport::transmit`]). Applications' command sets
//! sit on top: [`crate::piv`] wraps a session in its own `Session`.

use crate::command::{Command, Response};
use crate::transport::{self, Link, Transport};
use crate::Error;
use zeroize::Zeroizing;

/// A card over some transport.
pub struct Card<T: Transport> {
    transport: T,
    extended: bool,
}

impl<T: Transport> Card<T> {
    /// Wrap a transport; extended length is used when the ATR announces it.
    pub fn new(transport: T) -> Self {
        let extended = transport.extended_length();
        Self {
            transport,
            extended,
        }
    }

    /// Force extended length on or off (e.g. for a reader that mangles it).
    pub fn set_extended_length(&mut self, on: bool) {
        self.extended = on;
    }

    pub fn extended_length(&self) -> bool {
        self.extended
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    pub fn into_transport(self) -> T {
        self.transport
    }

    /// Run `f` under one exclusive transaction.
    pub fn transaction<R>(
        &mut self,
        f: impl FnOnce(&mut CardSession<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let extended = self.extended;
        let mut f = Some(f);
        let mut out = None;
        self.transport.exclusive(&mut |link| {
            let f = f
                .take()
                .ok_or(Error::InvalidArgument("transaction body ran twice"))?;
            let mut session = CardSession { link, extended };
            out = Some(f(&mut session)?);
            Ok(())
        })?;
        out.ok_or(Error::InvalidArgument("transaction body did not run"))
    }
}

/// Commands on a card inside one transaction.
pub struct CardSession<'a> {
    link: &'a mut dyn Link,
    extended: bool,
}

impl<'a> CardSession<'a> {
    /// A session over a raw link (tests, fuzzers, the CLI's `apdu` command).
    pub fn new(link: &'a mut dyn Link, extended: bool) -> Self {
        Self { link, extended }
    }

    /// The same session, borrowed for a shorter time.
    pub fn reborrow(&mut self) -> CardSession<'_> {
        CardSession {
            link: &mut *self.link,
            extended: self.extended,
        }
    }

    /// Whether commands go out in extended length.
    pub fn extended_length(&self) -> bool {
        self.extended
    }

    /// Send any command; chaining and GET RESPONSE are handled below.
    pub fn transmit(&mut self, cmd: &Command) -> Result<Response, Error> {
        transport::transmit(self.link, cmd, self.extended)
    }

    /// Send and require 9000.
    pub fn ok(&mut self, cmd: &Command) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.transmit(cmd)?.into_result()
    }
}
