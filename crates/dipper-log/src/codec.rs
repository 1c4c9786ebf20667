//! Byte-level encoding shared by segments and the journal: little-endian
//! integers, length-prefixed byte strings, and CRC-checked frames
//! (`len u32 | crc u32 | body`, where `len` counts crc + body).

/// Bytes before a frame's body: length and CRC.
pub(crate) const FRAME_HEADER: usize = 8;

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len() as u32);
    out.extend_from_slice(b);
}
/// Optional bytes: `u32::MAX` length marks `None`.
pub(crate) fn put_opt_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => put_bytes(out, b),
        None => put_u32(out, u32::MAX),
    }
}

/// Appends `body` to `out` as one CRC frame.
pub(crate) fn put_frame(out: &mut Vec<u8>, body: &[u8]) {
    put_u32(out, (body.len() + 4) as u32);
    put_u32(out, crc32fast::hash(body));
    out.extend_from_slice(body);
}

/// Outcome of looking for a frame at the start of a buffer.
pub(crate) enum Frame<'a> {
    /// A valid frame; `size` is its total byte length.
    Ok { body: &'a [u8], size: usize },
    /// Torn, truncated or CRC-damaged.
    Bad(&'static str),
}

pub(crate) fn get_frame(buf: &[u8]) -> Frame<'_> {
    if buf.len() < FRAME_HEADER {
        return Frame::Bad("truncated frame header");
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
    if len < 4 {
        return Frame::Bad("frame length too small");
    }
    if len > buf.len() - 4 {
        return Frame::Bad("frame extends past end of data");
    }
    let crc = u32::from_le_bytes(buf[4..8].try_into().unwrap());
    let body = &buf[FRAME_HEADER..4 + len];
    if crc32fast::hash(body) != crc {
        return Frame::Bad("CRC mismatch");
    }
    Frame::Ok {
        body,
        size: 4 + len,
    }
}

/// Bounds-checked reader over a frame body; every getter fails instead of panicking.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

pub(crate) type DecodeResult<T> = Result<T, &'static str>;

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    fn take(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        if self.buf.len() - self.pos < n {
            return Err("field extends past end of frame");
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub(crate) fn u8(&mut self) -> DecodeResult<u8> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> DecodeResult<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub(crate) fn u64(&mut self) -> DecodeResult<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    pub(crate) fn bytes(&mut self) -> DecodeResult<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub(crate) fn opt_bytes(&mut self) -> DecodeResult<Option<&'a [u8]>> {
        let n = self.u32()?;
        if n == u32::MAX {
            Ok(None)
        } else {
            self.take(n as usize).map(Some)
        }
    }
    pub(crate) fn string(&mut self) -> DecodeResult<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "string is not UTF-8")
    }
    /// Everything not read yet (without consuming it).
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
    pub(crate) fn finish(&self) -> DecodeResult<()> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err("trailing bytes in frame")
        }
    }
}
