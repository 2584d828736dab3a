//! A hostile card: a [`Link`] that answers every command with the next
//! fuzzer-chosen answer, whatever was asked, and records the commands.
//!
//! When the answers run out it starts over from the first one, as a card
//! stuck in a loop would (`61 00` forever, `6C 00` forever...): whatever
//! drives the link must stop by itself. To turn "never stops" into a
//! finding, the link panics after [`MAX_EXCHANGES`] commands.

use crate::frames::Frames;
use apdu::transport::{Link, TransportError};

/// More exchanges than any single host operation may take.
pub const MAX_EXCHANGES: usize = 5_000;

/// A link that plays back `answers` (length-prefixed frames, see [`crate::frames`]).
pub struct ScriptedLink<'a> {
    answers: Vec<&'a [u8]>,
    next: usize,
    /// Every command sent, in order.
    pub sent: Vec<Vec<u8>>,
    /// The answer given to each of them.
    pub answered: Vec<Vec<u8>>,
}

impl<'a> ScriptedLink<'a> {
    pub fn new(answers: &'a [u8]) -> Self {
        Self {
            answers: Frames::new(answers).collect(),
            next: 0,
            sent: Vec::new(),
            answered: Vec::new(),
        }
    }
}

impl Link for ScriptedLink<'_> {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.sent.push(apdu.to_vec());
        assert!(
            self.sent.len() <= MAX_EXCHANGES,
            "the host does not stop: {} exchanges",
            self.sent.len()
        );
        if self.answers.is_empty() {
            // No answer at all: the card is gone.
            return Err(TransportError::CardRemoved);
        }
        let answer = self.answers[self.next % self.answers.len()].to_vec();
        self.next += 1;
        self.answered.push(answer.clone());
        Ok(answer)
    }
}
