//! Thread placement shared by replay and live.

/// Pins the calling thread to `core` (when given and the machine has more than one core); a failure is a warning.
pub fn pin(core: Option<usize>, what: &str) {
    let Some(want) = core else { return };
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    if ids.len() < 2 {
        return; // One core: pinning buys nothing.
    }
    match ids.iter().find(|c| c.id == want) {
        Some(&c) => {
            if !core_affinity::set_for_current(c) {
                eprintln!("warn: could not pin the {what} thread to core {want}");
            }
        }
        None => eprintln!("warn: {what} thread: core {want} does not exist here ({} cores); not pinned", ids.len()),
    }
}
