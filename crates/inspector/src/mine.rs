//! Mining a stream of log lines on every core: masking is per line, pure
//! and most of the work, while Drain is ordered (a line's cluster depends
//! on every line before it). So the input is cut into blocks at line ends,
//! a pool of workers masks blocks, and one thread feeds the masked lines to
//! Drain in input order: the same templates, counts and ids as masking and
//! mining one line after another.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};

use inspector_drain::{Drain, Masker};

/// Bytes read per block. A line longer than this is mined in pieces of
/// this size (the input is untrusted: a line without an end must not grow
/// memory without bound).
pub const BLOCK: usize = 1 << 20;

/// Blocks queued between stages (bounds memory to a few blocks).
const IN_FLIGHT: usize = 4;

/// What a run saw.
pub struct Mined {
    /// Non-blank lines mined.
    pub lines: u64,
    pub drain: Drain,
}

/// Masks and mines every line of `input` (`\n`-separated, `\r\n` too;
/// invalid UTF-8 replaced; blank lines skipped) with `workers` maskers.
pub fn mine(
    input: impl Read + Send,
    masker: &Masker,
    drain: Drain,
    workers: usize,
    block: usize,
) -> std::io::Result<Mined> {
    let block = block.max(1);
    std::thread::scope(|scope| {
        let (raw_tx, raw_rx) = sync_channel::<(u64, Vec<u8>)>(IN_FLIGHT);
        let raw_rx = Arc::new(Mutex::new(raw_rx));
        let (masked_tx, masked_rx) = sync_channel::<(u64, String)>(IN_FLIGHT);
        for _ in 0..workers.max(1) {
            let raw_rx = Arc::clone(&raw_rx);
            let masked_tx = masked_tx.clone();
            scope.spawn(move || {
                loop {
                    // The lock is held only to take the next block.
                    let next = raw_rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok((sequence, bytes)) = next else { break };
                    if masked_tx
                        .send((sequence, mask_block(&bytes, masker)))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(masked_tx);
        let reader = scope.spawn(move || {
            read_blocks(input, block, |sequence, bytes| {
                raw_tx.send((sequence, bytes)).is_ok()
            })
        });
        let mined = mine_in_order(masked_rx, drain);
        reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        Ok(mined)
    })
}

/// Reads `input` in blocks of about `block` bytes, each ending at a line end
/// (or cut at `block` bytes when a line is longer), handing each to `send`
/// with its sequence number until `send` refuses.
fn read_blocks(
    mut input: impl Read,
    block: usize,
    mut send: impl FnMut(u64, Vec<u8>) -> bool,
) -> std::io::Result<()> {
    let mut sequence = 0;
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut buffer = std::mem::take(&mut carry);
        buffer.reserve(block);
        let mut eof = false;
        while buffer.len() < block {
            let start = buffer.len();
            buffer.resize(block, 0);
            match input.read(&mut buffer[start..]) {
                Ok(0) => {
                    buffer.truncate(start);
                    eof = true;
                    break;
                }
                Ok(n) => buffer.truncate(start + n),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {
                    buffer.truncate(start)
                }
                Err(error) => return Err(error),
            }
        }
        if !eof && let Some(end) = buffer.iter().rposition(|&b| b == b'\n') {
            carry = buffer.split_off(end + 1);
        }
        if !buffer.is_empty() && !send(sequence, buffer) {
            return Ok(());
        }
        sequence += 1;
        if eof {
            return Ok(());
        }
    }
}

/// The non-blank lines of `bytes`, masked, joined by `\n` (a masked line
/// holds no `\n`: lines were split there).
fn mask_block(bytes: &[u8], masker: &Masker) -> String {
    let mut out = String::with_capacity(bytes.len());
    for raw in bytes.split(|&b| b == b'\n') {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        // Invalid UTF-8 is replaced, never fatal (checked the fast way
        // first: almost every line is valid).
        let line = match std::str::from_utf8(raw) {
            Ok(line) => std::borrow::Cow::Borrowed(line),
            Err(_) => String::from_utf8_lossy(raw),
        };
        if line.trim().is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        masker.mask_into(&line, &mut out);
    }
    out
}

/// Feeds masked blocks to Drain in sequence order.
fn mine_in_order(masked: Receiver<(u64, String)>, mut drain: Drain) -> Mined {
    let mut lines = 0;
    let mut pending = BTreeMap::new();
    let mut next = 0;
    for (sequence, block) in masked {
        pending.insert(sequence, block);
        while let Some(block) = pending.remove(&next) {
            for line in block.split('\n').filter(|line| !line.is_empty()) {
                drain.add(line);
                lines += 1;
            }
            next += 1;
        }
    }
    Mined { lines, drain }
}

#[cfg(test)]
mod tests {
    use inspector_drain::{Drain, DrainConfig, Masker};
    use proptest::prelude::*;

    fn serial(input: &[u8], masker: &Masker) -> (u64, Vec<String>) {
        let mut drain = Drain::new(DrainConfig::recommended()).unwrap();
        let mut lines = 0;
        for raw in input.split(|&b| b == b'\n') {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let line = String::from_utf8_lossy(raw);
            if line.trim().is_empty() {
                continue;
            }
            drain.add(&masker.mask(&line));
            lines += 1;
        }
        (lines, summary(&drain))
    }

    fn summary(drain: &Drain) -> Vec<String> {
        let mut out: Vec<String> = drain
            .clusters()
            .map(|c| format!("{} {} {}", c.id(), c.size(), c.template()))
            .collect();
        out.sort();
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Blocks, workers and reordering give exactly the serial result
        /// (tiny blocks, so lines are cut and blocks arrive out of order).
        #[test]
        fn parallel_mining_is_serial_mining(
            lines in proptest::collection::vec(
                prop_oneof![
                    "(ok|fail|retry) job [a-c]{1,2} took [0-9]{1,3}ms",
                    "user (root|guest) from 10\\.0\\.[0-9]\\.[0-9]{1,2}",
                    "[ \t]{0,3}",
                    proptest::collection::vec(any::<u8>(), 0..20)
                        .prop_map(|b| String::from_utf8_lossy(&b).replace('\n', " ")),
                ],
                0..200,
            ),
            crlf in any::<bool>(),
            block in 64usize..4096,
            workers in 1usize..4,
        ) {
            let newline = if crlf { "\r\n" } else { "\n" };
            let input = lines.join(newline).into_bytes();
            let masker = Masker::builtin();
            let expected = serial(&input, &masker);
            let mined = super::mine(
                &input[..],
                &masker,
                Drain::new(DrainConfig::recommended()).unwrap(),
                workers,
                // Large enough that no generated line is cut.
                block,
            )
            .unwrap();
            prop_assert_eq!((mined.lines, summary(&mined.drain)), expected);
        }
    }

    #[test]
    fn a_read_error_is_an_error() {
        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let masker = Masker::builtin();
        let drain = Drain::new(DrainConfig::recommended()).unwrap();
        let error = super::mine(Failing, &masker, drain, 2, 1024).err().unwrap();
        assert_eq!(error.to_string(), "disk on fire");
    }
}
