//! The outbox on disk: what a service could not publish before it stopped
//! is written here at shutdown and published first at the next start, with
//! the same `Nats-Msg-Id`s, so JetStream stores a resend once (inside its
//! duplicate window) and the aggregator counts a late one once per report.
//!
//! Format: `INSPOOL1`, then per message three length-prefixed fields
//! (u32 little-endian length; subject, message id or `u32::MAX` for none,
//! payload). Written to a temporary file and renamed, so a crash mid-write
//! leaves the previous spool or none, never half a one.

use std::io::{self, Read, Write};
use std::path::Path;

use bytes::Bytes;

use crate::Envelope;

const MAGIC: &[u8; 8] = b"INSPOOL1";
/// Largest field accepted when reading (a corrupt length is not an
/// allocation request).
const MAX_FIELD: u32 = 64 << 20;

/// Writes `envelopes` to `path` atomically; an empty list removes the file.
pub fn write(path: &Path, envelopes: &[Envelope]) -> io::Result<()> {
    if envelopes.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension("partial");
    {
        let mut file = io::BufWriter::new(std::fs::File::create(&partial)?);
        file.write_all(MAGIC)?;
        for envelope in envelopes {
            field(&mut file, Some(envelope.subject.as_bytes()))?;
            field(&mut file, envelope.msg_id.as_deref().map(str::as_bytes))?;
            field(&mut file, Some(&envelope.payload))?;
        }
        file.into_inner()?.sync_all()?;
    }
    std::fs::rename(&partial, path)
}

fn field(out: &mut impl Write, bytes: Option<&[u8]>) -> io::Result<()> {
    match bytes {
        Some(bytes) => {
            let len = u32::try_from(bytes.len())
                .ok()
                .filter(|len| *len < u32::MAX)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "field too long"))?;
            out.write_all(&len.to_le_bytes())?;
            out.write_all(bytes)
        }
        None => out.write_all(&u32::MAX.to_le_bytes()),
    }
}

/// Reads the spool at `path`; `Ok(empty)` when there is none.
pub fn read(path: &Path) -> io::Result<Vec<Envelope>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut reader = bytes.as_slice();
    let mut magic = [0u8; 8];
    reader.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(invalid("not an outbox spool"));
    }
    let mut envelopes = Vec::new();
    while !reader.is_empty() {
        let subject = read_field(&mut reader)?.ok_or_else(|| invalid("message without subject"))?;
        let msg_id = read_field(&mut reader)?;
        let payload = read_field(&mut reader)?.ok_or_else(|| invalid("message without payload"))?;
        envelopes.push(Envelope {
            subject: String::from_utf8(subject).map_err(|_| invalid("subject is not UTF-8"))?,
            msg_id: msg_id
                .map(String::from_utf8)
                .transpose()
                .map_err(|_| invalid("message id is not UTF-8"))?,
            payload: Bytes::from(payload),
        });
    }
    Ok(envelopes)
}

fn read_field(reader: &mut &[u8]) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len);
    if len == u32::MAX {
        return Ok(None);
    }
    if len > MAX_FIELD || len as usize > reader.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "field longer than the spool",
        ));
    }
    let (field, rest) = reader.split_at(len as usize);
    *reader = rest;
    Ok(Some(field.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(i: u8, id: bool) -> Envelope {
        Envelope {
            subject: format!("inspector.findings.trend.{i}"),
            payload: Bytes::from(vec![i; usize::from(i) * 10]),
            msg_id: id.then(|| format!("id-{i}")),
        }
    }

    #[test]
    fn round_trip_and_empty_removes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.spool");
        assert!(read(&path).unwrap().is_empty(), "none yet");
        let sent = vec![envelope(1, true), envelope(2, false), envelope(0, true)];
        write(&path, &sent).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back.len(), 3);
        for (a, b) in sent.iter().zip(&back) {
            assert_eq!(
                (&a.subject, &a.msg_id, &a.payload),
                (&b.subject, &b.msg_id, &b.payload)
            );
        }
        write(&path, &[]).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn corrupt_spools_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.spool");
        write(&path, &[envelope(3, true)]).unwrap();
        let good = std::fs::read(&path).unwrap();
        for cut in (0..good.len()).filter(|cut| *cut != MAGIC.len()) {
            std::fs::write(&path, &good[..cut]).unwrap();
            assert!(read(&path).is_err(), "cut at {cut}");
        }
        let mut huge = MAGIC.to_vec();
        huge.extend(u32::MAX.wrapping_sub(1).to_le_bytes());
        std::fs::write(&path, huge).unwrap();
        assert!(read(&path).is_err());
    }
}
