//! One module per fuzz target; each `run` panics when an invariant breaks.

pub mod atr;
pub mod command_apdu;
pub mod piv_objects;
pub mod response;
pub mod sim_dispatcher;
pub mod tlv;
