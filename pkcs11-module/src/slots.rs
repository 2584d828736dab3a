//! Slots: one per PC/SC reader (in reader order), then (feature `sim`) one
//! per simulated token. Presence is polled without any APDU (PC/SC reader
//! states, the simulator's presence); a changed insertion makes a new
//! token (a [`Backend`]), so sessions and handles of the old card die with it.
//!
//! Slot IDs are never reused: a reader that goes away keeps its ID (and
//! reports no token) should it come back.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::token::{Connector, Token};
use cryptoki_sys::CK_SLOT_ID;
use std::collections::VecDeque;
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Where a slot's card lives.
pub enum Reader {
    Pcsc(CString),
    #[cfg(any(test, feature = "sim"))]
    Sim(ukey_sim::SimReader),
    #[cfg(any(test, feature = "test-readers"))]
    Test(crate::testing::readers::Connect),
}

pub struct SlotEntry {
    pub id: CK_SLOT_ID,
    pub reader: Reader,
    pub description: String,
    /// The reader is still attached.
    pub attached: bool,
    pub card_present: bool,
    /// Insertion counter (PC/SC event count / simulator insertions).
    insertion: u64,
    pub token: Option<Arc<dyn Backend>>,
}

struct Table {
    slots: Vec<SlotEntry>,
    /// PC/SC readers, as the CLI sees them too (ukey-token).
    pcsc: ukey_token::readers::PcscReaders,
    events: VecDeque<CK_SLOT_ID>,
    closed: bool,
}

pub struct Slots {
    table: Mutex<Table>,
    changed: Condvar,
    use_pcsc: bool,
    /// The configuration's `restore_login`, for every token made.
    restore_login: bool,
    generation: AtomicU64,
}

impl Slots {
    /// Discover readers (`no_pcsc` skips PC/SC; `sim` adds simulated tokens),
    /// as the configuration file and environment say. A state file that
    /// cannot be opened (missing, a directory, not a token, a symbolic link)
    /// is one log line and no slot: it never hides the real tokens, and it
    /// is never created.
    pub fn new(settings: &ukey_config::Config) -> Result<Self> {
        let use_pcsc = !settings.no_pcsc;
        #[cfg(feature = "sim")]
        let sims = sim_readers(settings);
        let slots = Slots {
            table: Mutex::new(Table {
                slots: Vec::new(),
                pcsc: ukey_token::readers::PcscReaders::new(),
                events: VecDeque::new(),
                closed: false,
            }),
            changed: Condvar::new(),
            use_pcsc,
            restore_login: settings.restore_login,
            generation: AtomicU64::new(1),
        };
        {
            let mut t = slots.lock();
            slots.poll_pcsc(&mut t);
            #[cfg(feature = "sim")]
            for r in sims {
                let id = t.slots.len() as CK_SLOT_ID;
                let description = format!("ukey-sim {}", r.name().trim_start_matches("ukey-sim "));
                t.slots.push(SlotEntry {
                    id,
                    reader: Reader::Sim(r),
                    description,
                    attached: true,
                    card_present: false,
                    insertion: 0,
                    token: None,
                });
            }
            #[cfg(any(test, feature = "test-readers"))]
            for (name, connect) in crate::testing::readers::registered() {
                let id = t.slots.len() as CK_SLOT_ID;
                t.slots.push(SlotEntry {
                    id,
                    reader: Reader::Test(connect),
                    description: name,
                    attached: true,
                    card_present: false,
                    insertion: 0,
                    token: None,
                });
                slots.set_presence(&mut t, id as usize, true, 0);
            }
            slots.poll_sims(&mut t);
            // What is there at start-up is not an event.
            t.events.clear();
        }
        Ok(slots)
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::SeqCst)
    }

    fn set_presence(&self, t: &mut Table, idx: usize, present: bool, insertion: u64) {
        let gen = self.next_generation();
        let entry = &mut t.slots[idx];
        // A token found dead (another card after a reset, a failed
        // connection) while the reader still shows a card: whatever is in
        // the reader now is a new token.
        let dead = present && entry.token.as_ref().is_some_and(|tok| tok.is_removed());
        let changed =
            dead || present != entry.card_present || (present && insertion != entry.insertion);
        if !changed {
            return;
        }
        if let Some(old) = entry.token.take() {
            old.mark_removed();
        }
        entry.card_present = present;
        entry.insertion = insertion;
        if present {
            let connector = match &entry.reader {
                Reader::Pcsc(name) => match t.pcsc.context() {
                    Some(ctx) => Connector::Pcsc {
                        ctx: ctx.clone(),
                        reader: name.clone(),
                    },
                    None => return,
                },
                #[cfg(any(test, feature = "sim"))]
                Reader::Sim(r) => Connector::Sim(r.clone()),
                #[cfg(any(test, feature = "test-readers"))]
                Reader::Test(c) => Connector::Test(c.clone()),
            };
            // A reader holds a card spoken to in APDUs: PIV is the one such
            // backend today.
            entry.token = Some(Arc::new(Token::new(
                entry.id,
                gen,
                connector,
                self.restore_login,
            )));
        }
        let id = entry.id;
        t.events.push_back(id);
        self.changed.notify_all();
    }

    fn poll_pcsc(&self, t: &mut Table) {
        if !self.use_pcsc {
            return;
        }
        let readers = match t.pcsc.scan() {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("PC/SC readers unavailable: {e}");
                // pcscd is not there or went away (asked again a second
                // later): its cards are gone.
                for i in 0..t.slots.len() {
                    if matches!(t.slots[i].reader, Reader::Pcsc(_)) {
                        t.slots[i].attached = false;
                        self.set_presence(t, i, false, 0);
                    }
                }
                return;
            }
        };
        for i in 0..t.slots.len() {
            // The only kind of reader in a build without simulator or tests.
            #[allow(irrefutable_let_patterns)]
            if let Reader::Pcsc(name) = &t.slots[i].reader {
                if !readers.iter().any(|r| &r.name == name) && t.slots[i].attached {
                    t.slots[i].attached = false;
                    self.set_presence(t, i, false, 0);
                }
            }
        }
        for r in readers {
            let idx = match t
                .slots
                .iter()
                .position(|s| matches!(&s.reader, Reader::Pcsc(n) if *n == r.name))
            {
                Some(i) => i,
                None => {
                    let id = t.slots.len() as CK_SLOT_ID;
                    t.slots.push(SlotEntry {
                        id,
                        reader: Reader::Pcsc(r.name.clone()),
                        description: r.name.to_string_lossy().into_owned(),
                        attached: true,
                        card_present: false,
                        insertion: 0,
                        token: None,
                    });
                    t.events.push_back(id);
                    t.slots.len() - 1
                }
            };
            t.slots[idx].attached = true;
            self.set_presence(t, idx, r.card_present, u64::from(r.event_count));
        }
    }

    #[cfg(any(test, feature = "sim"))]
    fn poll_sims(&self, t: &mut Table) {
        for i in 0..t.slots.len() {
            if let Reader::Sim(r) = &t.slots[i].reader {
                let (present, insertion) = r.presence();
                self.set_presence(t, i, present, insertion);
            }
        }
    }

    /// No simulated tokens in this build.
    #[cfg(not(any(test, feature = "sim")))]
    fn poll_sims(&self, _: &mut Table) {}

    /// Poll every reader (no APDU) and record what changed.
    pub fn refresh(&self) {
        let mut t = self.lock();
        self.poll_pcsc(&mut t);
        self.poll_sims(&mut t);
    }

    /// A token the caller's earlier handle pointed to vanished: make the
    /// slot show it at the next poll (its card is gone or was replaced).
    pub fn forget_token(&self, id: CK_SLOT_ID, generation: u64) {
        let mut t = self.lock();
        if let Some(e) = t.slots.get_mut(id as usize) {
            if e.token
                .as_ref()
                .is_some_and(|tok| tok.generation() == generation)
            {
                e.token = None;
                e.card_present = false;
                t.events.push_back(id);
                self.changed.notify_all();
            }
        }
    }

    /// IDs of all slots (attached readers), or only those with a token.
    pub fn ids(&self, token_present: bool) -> Vec<CK_SLOT_ID> {
        self.refresh();
        let t = self.lock();
        t.slots
            .iter()
            .filter(|s| s.attached && (!token_present || s.card_present))
            .map(|s| s.id)
            .collect()
    }

    /// Slot description and presence.
    pub fn describe(&self, id: CK_SLOT_ID) -> Result<(String, bool)> {
        self.refresh();
        let t = self.lock();
        let s = t.slots.get(id as usize).ok_or(Error::SlotIdInvalid)?;
        Ok((s.description.clone(), s.card_present))
    }

    /// The token in slot `id` (no card traffic: it connects on first use).
    pub fn token(&self, id: CK_SLOT_ID) -> Result<Arc<dyn Backend>> {
        let mut t = self.lock();
        if id as usize >= t.slots.len() {
            return Err(Error::SlotIdInvalid);
        }
        // Cheap presence check of just this slot's reader.
        let idx = id as usize;
        match &t.slots[idx].reader {
            #[cfg(any(test, feature = "sim"))]
            Reader::Sim(r) => {
                let (present, insertion) = r.presence();
                self.set_presence(&mut t, idx, present, insertion);
            }
            Reader::Pcsc(_) => self.poll_pcsc(&mut t),
            #[cfg(any(test, feature = "test-readers"))]
            Reader::Test(_) => self.set_presence(&mut t, idx, true, 0),
        }
        match &t.slots[idx].token {
            Some(tok) if !tok.is_removed() => Ok(tok.clone()),
            _ => Err(Error::TokenNotPresent),
        }
    }

    /// The token in slot `id` as the last poll saw it: no reader is polled
    /// and no card touched (mechanism queries, which clients repeat in
    /// loops, need neither). Slots are polled by C_GetSlotList, C_GetSlotInfo,
    /// C_OpenSession and friends.
    pub fn known_token(&self, id: CK_SLOT_ID) -> Result<Arc<dyn Backend>> {
        let t = self.lock();
        let entry = t.slots.get(id as usize).ok_or(Error::SlotIdInvalid)?;
        match &entry.token {
            Some(tok) if !tok.is_removed() => Ok(tok.clone()),
            _ => Err(Error::TokenNotPresent),
        }
    }

    /// C_WaitForSlotEvent: the next slot whose state changed.
    pub fn wait_event(&self, block: bool) -> Result<CK_SLOT_ID> {
        loop {
            self.refresh();
            let mut t = self.lock();
            if t.closed {
                return Err(Error::NotInitialized);
            }
            if let Some(id) = t.events.pop_front() {
                return Ok(id);
            }
            if !block {
                return Err(Error::NoEvent);
            }
            // Readers are polled; a change or C_Finalize wakes us sooner.
            let (guard, _) = self
                .changed
                .wait_timeout(t, Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner());
            if guard.closed {
                return Err(Error::NotInitialized);
            }
        }
    }

    /// C_Finalize: wake every waiter; they return CKR_CRYPTOKI_NOT_INITIALIZED.
    pub fn close(&self) {
        let mut t = self.lock();
        t.closed = true;
        if let Some(ctx) = t.pcsc.context() {
            let _ = ctx.cancel();
        }
        self.changed.notify_all();
    }

    /// Every token currently present.
    pub fn tokens(&self) -> Vec<Arc<dyn Backend>> {
        self.lock()
            .slots
            .iter()
            .filter_map(|s| s.token.clone())
            .collect()
    }
}

/// Simulated tokens: `UKEY_SIM`, else the configuration file's `sim` list.
/// A state file that cannot be opened is one log line and no slot.
#[cfg(feature = "sim")]
fn sim_readers(settings: &ukey_config::Config) -> Vec<ukey_sim::SimReader> {
    let mut sims = Vec::new();
    for path in &settings.sim {
        match ukey_sim::SimReader::open(path) {
            Ok(r) => sims.push(r),
            Err(e) => tracing::warn!("UKEY_SIM entry (or `sim` in ukey.toml) skipped: {e}"),
        }
    }
    sims
}
