// SPDX-License-Identifier: MPL-2.0
//! The one bit reader of the bitstream parsers: H.264/H.265 RBSP (`u(n)`, `ue(v)`, `se(v)`,
//! H.264 §7.2 and §9.1, H.265 §7.2 and §9.2) and AV1 OBU payloads (`f(n)`, `uvlc()`, AV1
//! spec §4.10), on `bitstream-io`'s MSB-first [`bitstream_io::BitReader`].
//!
//! Errors name the syntax element being read and are converted into each parser's own error
//! type `E` (`From<BitError>`), so the parsers use `?` without mapping. Never panics: reads
//! past the end are [`BitError::Truncated`].

use std::marker::PhantomData;

use bitstream_io::{BigEndian, BitRead};

/// A read failed; names the syntax element being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BitError {
    /// The data ended before the element.
    #[error("data ended while reading {0}")]
    Truncated(&'static str),
    /// The element is outside its allowed range.
    #[error("value out of range for {0}")]
    InvalidValue(&'static str),
}

/// MSB-first bit reader over a byte slice; errors of type `E` (a parser's error type).
pub struct BitReader<'a, E> {
    data: &'a [u8],
    inner: bitstream_io::BitReader<&'a [u8], BigEndian>,
    pos: usize,
    error: PhantomData<fn() -> E>,
}

impl<'a, E: From<BitError>> BitReader<'a, E> {
    /// A reader at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            inner: bitstream_io::BitReader::endian(data, BigEndian),
            pos: 0,
            error: PhantomData,
        }
    }

    /// The bytes being read.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Bits read so far.
    #[cfg(test)]
    pub fn bit_pos(&self) -> usize {
        self.pos
    }

    /// `u(n)` / `f(n)` for n <= 64, MSB first. After an error the reader's position is
    /// unspecified (the parsers stop at the first error).
    pub fn u(&mut self, n: u32, what: &'static str) -> Result<u64, E> {
        if n == 0 {
            return Ok(0);
        }
        if n > 64 {
            return Err(BitError::InvalidValue(what).into());
        }
        let v = self
            .inner
            .read_var::<u64>(n)
            .map_err(|_| BitError::Truncated(what))?;
        self.pos += n as usize;
        Ok(v)
    }

    /// `u(n)` for n <= 8.
    pub fn bits_u8(&mut self, n: u32, what: &'static str) -> Result<u8, E> {
        Ok(self.u(n, what)? as u8)
    }

    /// AV1 `f(n)` for n <= 32.
    pub fn f(&mut self, n: u32, what: &'static str) -> Result<u32, E> {
        Ok(self.u(n, what)? as u32)
    }

    /// `u(1)` as a flag.
    pub fn flag(&mut self, what: &'static str) -> Result<bool, E> {
        let b = self
            .inner
            .read_bit()
            .map_err(|_| BitError::Truncated(what))?;
        self.pos += 1;
        Ok(b)
    }

    /// Skips `n` bits; fails without moving when fewer are left.
    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), E> {
        let left = self.data.len().saturating_mul(8) - self.pos;
        let bits = u32::try_from(n)
            .ok()
            .filter(|_| n <= left)
            .ok_or(BitError::Truncated(what))?;
        self.inner
            .skip(bits)
            .map_err(|_| BitError::Truncated(what))?;
        self.pos += n;
        Ok(())
    }

    /// `ue(v)` (H.264 §9.1, H.265 §9.2); more than 31 leading zero bits (a value above
    /// 2^32 - 2) is [`BitError::InvalidValue`].
    pub fn ue(&mut self, what: &'static str) -> Result<u32, E> {
        let mut leading_zeros = 0;
        while !self.flag(what)? {
            leading_zeros += 1;
            if leading_zeros > 31 {
                return Err(BitError::InvalidValue(what).into());
            }
        }
        let value = (1u64 << leading_zeros) - 1 + self.u(leading_zeros, what)?;
        Ok(u32::try_from(value).map_err(|_| BitError::InvalidValue(what))?)
    }

    /// `ue(v)` with an inclusive upper bound from the semantics.
    pub fn ue_max(&mut self, max: u32, what: &'static str) -> Result<u32, E> {
        let v = self.ue(what)?;
        if v > max {
            return Err(BitError::InvalidValue(what).into());
        }
        Ok(v)
    }

    /// `se(v)`: `ue(v)` k mapped to (-1)^(k+1) * ceil(k / 2).
    pub fn se(&mut self, what: &'static str) -> Result<i64, E> {
        let k = i64::from(self.ue(what)?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }

    /// `se(v)` whose value is not needed (only its length matters).
    pub fn skip_se(&mut self, what: &'static str) -> Result<(), E> {
        self.ue(what).map(|_| ())
    }

    /// AV1 `uvlc()` (AV1 spec §4.10.3): 32 or more leading zeros give 2^32 - 1 without
    /// value bits.
    pub fn uvlc(&mut self, what: &'static str) -> Result<u32, E> {
        let mut leading_zeros: u32 = 0;
        while !self.flag(what)? {
            leading_zeros = leading_zeros.saturating_add(1);
        }
        if leading_zeros >= 32 {
            return Ok(u32::MAX);
        }
        let value = self.u(leading_zeros, what)?;
        Ok((value + (1u64 << leading_zeros) - 1) as u32)
    }
}

/// The one bit writer of the parsers' unit tests, on `bitstream-io`'s [`bitstream_io::BitWriter`].
#[cfg(test)]
pub struct BitWriter(bitstream_io::BitWriter<Vec<u8>, BigEndian>);

#[cfg(test)]
impl Default for BitWriter {
    fn default() -> Self {
        BitWriter(bitstream_io::BitWriter::endian(Vec::new(), BigEndian))
    }
}

#[cfg(test)]
impl BitWriter {
    /// The low `n` bits of `value`, MSB first; bits above 64 are zeros.
    pub fn put(&mut self, n: u32, value: u64) {
        use bitstream_io::BitWrite;
        let (zeros, n) = (n.saturating_sub(64), n.min(64));
        for _ in 0..zeros {
            self.0.write_bit(false).unwrap();
        }
        if n > 0 {
            let value = if n == 64 {
                value
            } else {
                value & ((1 << n) - 1)
            };
            self.0.write_var(n, value).unwrap();
        }
    }

    /// `u(1)`.
    pub fn flag(&mut self, b: bool) {
        self.put(1, u64::from(b));
    }

    /// `ue(v)`, also AV1 `uvlc()` (the same code).
    pub fn ue(&mut self, v: u32) {
        let v = u64::from(v) + 1;
        let len = 64 - v.leading_zeros();
        self.put(len - 1, 0);
        self.put(len, v);
    }

    /// AV1 `uvlc()`.
    pub fn uvlc(&mut self, v: u32) {
        self.ue(v);
    }

    /// `se(v)`.
    pub fn se(&mut self, v: i32) {
        let mapped = if v > 0 {
            2 * v as u32 - 1
        } else {
            (-2 * i64::from(v)) as u32
        };
        self.ue(mapped);
    }

    /// `rbsp_trailing_bits()` / AV1 `trailing_bits()`: a 1, then zeros to the byte boundary;
    /// returns the bytes.
    pub fn finish(mut self) -> Vec<u8> {
        use bitstream_io::BitWrite;
        self.put(1, 1);
        self.0.byte_align().unwrap();
        self.0.into_writer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_writer_wrote() {
        let mut w = BitWriter::default();
        w.put(3, 5);
        w.ue(0);
        w.ue(41);
        w.se(-7);
        w.se(8);
        w.put(64, u64::MAX - 1);
        w.put(70, 3);
        w.uvlc(u32::MAX - 1);
        let bytes = w.finish();
        let mut r = BitReader::<BitError>::new(&bytes);
        assert_eq!(r.u(3, "a"), Ok(5));
        assert_eq!(r.u(0, "zero"), Ok(0));
        assert_eq!(r.ue("b"), Ok(0));
        assert_eq!(r.ue_max(41, "c"), Ok(41));
        assert_eq!(r.se("d"), Ok(-7));
        assert_eq!(r.se("e"), Ok(8));
        assert_eq!(r.u(64, "f"), Ok(u64::MAX - 1));
        assert_eq!(r.u(6, "g"), Ok(0));
        assert_eq!(r.u(64, "h"), Ok(3));
        assert_eq!(r.uvlc("i"), Ok(u32::MAX - 1));
        assert_eq!(r.flag("stop"), Ok(true));
        let pos = r.bit_pos();
        assert_eq!(pos.div_ceil(8), bytes.len());
        assert_eq!(
            r.skip(bytes.len() * 8 - pos + 1, "j"),
            Err(BitError::Truncated("j"))
        );
        assert_eq!(r.bit_pos(), pos); // a failed skip does not move
        assert_eq!(r.skip(bytes.len() * 8 - pos, "k"), Ok(()));
        assert_eq!(r.flag("l"), Err(BitError::Truncated("l")));
        assert_eq!(r.u(65, "m"), Err(BitError::InvalidValue("m")));
    }

    #[test]
    fn exp_golomb_limits() {
        // 31 leading zeros and all ones: the largest ue(v), 2^32 - 2; 32 zeros are too many.
        let mut r = BitReader::<BitError>::new(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.ue("a"), Ok(u32::MAX - 1));
        let mut r = BitReader::<BitError>::new(&[0, 0, 0, 0, 0x80]);
        assert_eq!(r.ue("b"), Err(BitError::InvalidValue("b")));
        let mut r = BitReader::<BitError>::new(&[0, 0, 0, 0, 0x80]);
        assert_eq!(r.uvlc("c"), Ok(u32::MAX));
        let mut r = BitReader::<BitError>::new(&[0x20]);
        assert_eq!(r.ue_max(2, "d"), Err(BitError::InvalidValue("d")));
        assert_eq!(
            BitReader::<BitError>::new(&[]).ue("e"),
            Err(BitError::Truncated("e"))
        );
        assert_eq!(
            BitError::Truncated("x").to_string(),
            "data ended while reading x"
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x0123_4567_89ab_cdefu64;
        for len in 0..64usize {
            for _ in 0..64 {
                let data: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        // Mostly zeros: long Exp-Golomb prefixes.
                        if state.is_multiple_of(3) {
                            state as u8
                        } else {
                            0
                        }
                    })
                    .collect();
                let mut r = BitReader::<BitError>::new(&data);
                for k in 0.. {
                    let step = match k % 6 {
                        0 => r.ue("ue").map(|_| ()),
                        1 => r.se("se").map(|_| ()),
                        2 => r.uvlc("uvlc").map(|_| ()),
                        3 => r.u((state % 70) as u32, "u").map(|_| ()),
                        4 => r.skip((state % 40) as usize, "skip"),
                        _ => r.flag("flag").map(|_| ()),
                    };
                    assert!(r.bit_pos() <= data.len() * 8);
                    if step.is_err() || k > 1000 {
                        break;
                    }
                }
            }
        }
    }
}
