//! Rollups: for each chunk (see [`super::chunk`]), per 10-minute bucket ([`ROLLUP_MS`], aligned
//! to the epoch) the sums of every status code's hits and percentage units over the bucket's
//! successful polls, with the chunk's instants and success flags. Pure (bytes in, sums out):
//! the SQLite history stores them (`rollups` table, schema version 3) beside the chunks.
//!
//! A downsampled week (buckets a multiple of 10 minutes wide, aligned to the epoch: see
//! `handlers::timeseries::series`) then adds about 1,000 sums per code instead of decoding the
//! codes of 5,040 polls. The sums are integers, so a query bucket made of several rollup buckets
//! is exactly the sum over its polls, and its average equals the one computed poll by poll.
//! The instants stay because the series need them: which buckets have polls at all, how many
//! succeeded, and where polls are missing (the hole rule uses the median spacing).
//!
//! Layout (varints are LEB128, as in a chunk):
//!
//! ```text
//! format byte (1)
//! n                                   polls, ascending by instant, one per instant
//! first instant (signed), n - 1 deltas (ms, > 0)
//! success bitmap (n bits)
//! bucket count, then per bucket whose successful polls have codes, ascending:
//!     index of the bucket in the block, then the edge's section and the origin's, each as
//!     byte length, then per code by ascending status: status (the first) or its increase
//!     over the previous one, sum of hits, sum of percentage units
//! ```

use super::chunk::{block_of, KeyIndex, Row, BLOCK_MS};
use super::store::codec::{self, put, put_wide};

/// The width of a rollup bucket: 10 minutes (5 polls at the usual 2-minute interval). Query
/// buckets of at least this width are rounded up to a multiple of it (see
/// `handlers::timeseries::series::bucket_width`), so that rollups answer them.
pub const ROLLUP_MS: i64 = 10 * 60 * 1000;

const FORMAT: u8 = 1;
const BUCKETS_PER_BLOCK: u64 = (BLOCK_MS / ROLLUP_MS) as u64;

/// The sums of one code over a bucket: `status << 1 | side` (1 = origin), hits, units.
pub type CodeSum = (u32, u128, u128);

/// The sums of one code's hits and percentage units over a bucket.
type HitsAndUnits = (u128, u128);

/// The rollup of the rows of one chunk (ascending, one per instant); `None` when the codes of a
/// successful poll cannot be read (the block is then read from its chunk, which says so).
pub fn encode(rows: &[Row]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(16 + rows.len() * 3);
    out.push(FORMAT);
    put(&mut out, rows.len() as u64);
    let mut prev = 0i64;
    for (i, r) in rows.iter().enumerate() {
        if i == 0 {
            put(&mut out, ((r.at_ms << 1) ^ (r.at_ms >> 63)) as u64);
        } else {
            put(&mut out, r.at_ms.wrapping_sub(prev) as u64);
        }
        prev = r.at_ms;
    }
    let mut bitmap = vec![0u8; rows.len().div_ceil(8)];
    for (i, r) in rows.iter().enumerate() {
        if r.ok {
            bitmap[i / 8] |= 1 << (i % 8);
        }
    }
    out.extend_from_slice(&bitmap);

    // Per bucket with codes, ascending: its index, and the sums of each code (by its dense
    // index over the block) with whether the bucket has it.
    let block = rows.first().map_or(0, |r| block_of(r.at_ms));
    let mut keys = KeyIndex::new();
    let mut buckets: Vec<(u64, Vec<Option<HitsAndUnits>>)> = Vec::new();
    for r in rows.iter().filter(|r| r.ok && !r.codes.is_empty()) {
        let index = ((r.at_ms - block) / ROLLUP_MS) as u64;
        if buckets.last().is_none_or(|(i, _)| *i != index) {
            buckets.push((index, Vec::new()));
        }
        let sums = &mut buckets.last_mut()?.1;
        codec::walk(&r.codes, |key, hits, units| {
            let at = keys.index(key as u32);
            if at >= sums.len() {
                sums.resize(at + 1, None);
            }
            let sum = sums[at].get_or_insert((0, 0));
            sum.0 += u128::from(hits);
            sum.1 += u128::from(units);
        })?;
    }
    buckets.retain(|(_, sums)| sums.iter().any(Option::is_some));
    put(&mut out, buckets.len() as u64);
    let order = keys.in_column_order();
    let mut section = Vec::new();
    for (index, sums) in buckets {
        put(&mut out, index);
        for side in [0, 1] {
            section.clear();
            let mut prev = 0;
            for &at in &order {
                let key = keys.key(at);
                let Some(&Some((hits, units))) = sums.get(at) else {
                    continue;
                };
                if key & 1 != side {
                    continue;
                }
                let status = key >> 1;
                put(&mut section, u64::from(status - prev));
                put_wide(&mut section, hits);
                put_wide(&mut section, units);
                prev = status;
            }
            put(&mut out, section.len() as u64);
            out.extend_from_slice(&section);
        }
    }
    Some(out)
}

/// A decoded rollup: every poll's instant and success, and the sums of the sides asked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rollup {
    pub at_ms: Vec<i64>,
    ok: Vec<u8>,
    /// Per bucket with codes: its start and the end of its sums in `codes`.
    buckets: Vec<(i64, usize)>,
    codes: Vec<CodeSum>,
}

impl Rollup {
    /// Decodes `bytes`, the rollup of the chunk of `block`, keeping the sums of the edge and/or
    /// the origin; `None` when they are not a rollup of that block.
    pub fn decode(bytes: &[u8], block: i64, edge: bool, origin: bool) -> Option<Rollup> {
        let mut pos = 1;
        if *bytes.first()? != FORMAT {
            return None;
        }
        let n = usize::try_from(codec::get(bytes, &mut pos)?).ok()?;
        // Each poll takes at least one byte (its delta).
        if n > bytes.len() {
            return None;
        }
        let mut at_ms = Vec::with_capacity(n);
        let mut at = 0i64;
        for i in 0..n {
            let v = codec::get(bytes, &mut pos)?;
            at = if i == 0 {
                (v >> 1) as i64 ^ -((v & 1) as i64)
            } else {
                let d = i64::try_from(v).ok().filter(|d| *d > 0)?;
                at.checked_add(d)?
            };
            at_ms.push(at);
        }
        let block_end = block.checked_add(BLOCK_MS)?;
        if at_ms.first().is_some_and(|a| *a < block)
            || at_ms.last().is_some_and(|a| *a >= block_end)
        {
            return None;
        }
        let end = pos.checked_add(n.div_ceil(8))?;
        let ok = bytes.get(pos..end)?.to_vec();
        pos = end;
        let count = codec::get(bytes, &mut pos)?;
        let mut buckets = Vec::new();
        let mut codes = Vec::new();
        let mut last_index = None;
        for _ in 0..count {
            let index = codec::get(bytes, &mut pos)?;
            if index >= BUCKETS_PER_BLOCK || last_index.is_some_and(|l| l >= index) {
                return None;
            }
            last_index = Some(index);
            for (side, wanted) in [(0u32, edge), (1, origin)] {
                let len = usize::try_from(codec::get(bytes, &mut pos)?).ok()?;
                let end = pos.checked_add(len)?;
                let section = bytes.get(pos..end)?;
                pos = end;
                if !wanted {
                    continue;
                }
                let mut p = 0;
                let mut status = 0u64;
                while p < section.len() {
                    status = status.checked_add(codec::get(section, &mut p)?)?;
                    let status = u16::try_from(status).ok()?;
                    let hits = codec::get_wide(section, &mut p)?;
                    let units = codec::get_wide(section, &mut p)?;
                    codes.push((u32::from(status) << 1 | side, hits, units));
                }
            }
            // In the block: `index` is below BUCKETS_PER_BLOCK and the block's end fits.
            buckets.push((block + index as i64 * ROLLUP_MS, codes.len()));
        }
        (pos == bytes.len()).then_some(Rollup {
            at_ms,
            ok,
            buckets,
            codes,
        })
    }

    /// Whether poll `i` succeeded.
    #[inline]
    pub fn ok(&self, i: usize) -> bool {
        self.ok[i / 8] & (1 << (i % 8)) != 0
    }

    /// Each bucket with codes: its start, and the sums of its codes (edge first, each side by
    /// ascending status).
    pub fn buckets(&self) -> impl Iterator<Item = (i64, &[CodeSum])> + '_ {
        let mut start = 0;
        self.buckets.iter().map(move |&(at, end)| {
            let codes = &self.codes[start..end];
            start = end;
            (at, codes)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::chunk::tests::code;
    use super::*;
    use crate::estats::model::StatusCodeCount;

    fn row(at_ms: i64, ok: bool, edge: &[StatusCodeCount], origin: &[StatusCodeCount]) -> Row {
        Row {
            at_ms,
            ok,
            codes: if ok {
                codec::encode(edge, origin)
            } else {
                Vec::new()
            },
            ..Row::default()
        }
    }

    const B: i64 = 1_699_999_200_000;

    #[test]
    fn sums_per_bucket_and_side_with_instants_and_success() {
        let rows = vec![
            row(B, true, &[code(200, 9, 90.0), code(503, 1, 10.0)], &[]),
            row(
                B + 120_000,
                true,
                &[code(200, 10, 100.0)],
                &[code(404, 7, 100.0)],
            ),
            row(B + 240_000, false, &[], &[]),
            // Next bucket; codes out of order and a status twice still sum.
            row(
                B + ROLLUP_MS,
                true,
                &[
                    code(503, 2, 20.0),
                    code(200, 8, 80.0),
                    code(503, u64::MAX, 0.0),
                ],
                &[],
            ),
            // A successful poll without codes: counted in the instants, no sums.
            row(B + 3 * ROLLUP_MS + 1, true, &[], &[]),
        ];
        let bytes = encode(&rows).unwrap();
        let r = Rollup::decode(&bytes, B, true, true).unwrap();
        assert_eq!(r.at_ms, rows.iter().map(|r| r.at_ms).collect::<Vec<_>>());
        assert_eq!(
            (0..5).map(|i| r.ok(i)).collect::<Vec<_>>(),
            [true, true, false, true, true]
        );
        let buckets: Vec<(i64, Vec<CodeSum>)> =
            r.buckets().map(|(at, c)| (at, c.to_vec())).collect();
        assert_eq!(
            buckets,
            [
                (
                    B,
                    vec![
                        (400, 19, 1_900_000),
                        (1006, 1, 100_000),
                        (809, 7, 1_000_000)
                    ]
                ),
                (
                    B + ROLLUP_MS,
                    vec![(400, 8, 800_000), (1006, 2 + u128::from(u64::MAX), 200_000)]
                ),
            ]
        );
        // One side alone.
        let edge = Rollup::decode(&bytes, B, true, false).unwrap();
        assert!(edge.buckets().all(|(_, c)| c.iter().all(|k| k.0 & 1 == 0)));
        let origin = Rollup::decode(&bytes, B, false, true).unwrap();
        assert_eq!(
            origin.buckets().map(|(_, c)| c.len()).collect::<Vec<_>>(),
            [1, 0]
        );
        assert_eq!(
            Rollup::decode(&encode(&[]).unwrap(), B, true, true).unwrap(),
            Rollup::default()
        );
    }

    #[test]
    fn unreadable_codes_and_damaged_bytes_are_refused() {
        let mut bad = row(B, true, &[], &[]);
        bad.codes = vec![1, 0x85];
        assert_eq!(encode(&[bad]), None);
        let rows = vec![
            row(B, true, &[code(200, 9, 90.0)], &[code(502, 1, 100.0)]),
            row(B + ROLLUP_MS * 11, true, &[code(200, 1, 100.0)], &[]),
        ];
        let bytes = encode(&rows).unwrap();
        for cut in 0..bytes.len() {
            assert_eq!(
                Rollup::decode(&bytes[..cut], B, true, true),
                None,
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Rollup::decode(&longer, B, true, true),
            None,
            "trailing bytes"
        );
        assert_eq!(Rollup::decode(&[2], B, true, true), None, "unknown format");
        for other in [B - BLOCK_MS, B + BLOCK_MS, i64::MAX - 1] {
            assert_eq!(
                Rollup::decode(&bytes, other, true, true),
                None,
                "block {other}"
            );
        }
    }
}
