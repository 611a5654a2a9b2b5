//! Plausible eStats answers, computed rather than stored.
//!
//! Each target gets a fixed "profile" (traffic volume, cache-miss ratio, status mix, edge servers)
//! from a hash of its subject and delivery network. The time-varying parts are sinusoids of the
//! time plus a little noise seeded by (target, 10-second bucket), so one answer is deterministic
//! for a target and bucket, consecutive answers move smoothly, and targets differ. Origin 5xx
//! bursts are scheduled per target and 15-minute window by hash: a few minutes of 500/502/503/504
//! at the origin, seen at the edge in proportion to the cache-miss ratio.
//!
//! Documented quirk (the "wrong delivery network" demo): a CP code ending in 7 serves only
//! STANDARD_TLS, so asking it for ENHANCED_TLS gives a SUCCESS with zero hits and no
//! distributions, as Akamai does when the network is not used.

use std::f64::consts::{PI, TAU};

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::Value;

use crate::estats::model::{
    EdgeIpInfo, EdgeIpLocation, EstatsData, EstatsRequest, EstatsResponse, ObjectStatus,
    StatusCodeCount,
};
use crate::handlers::distribution::round2;

/// Seconds per deterministic sample bucket.
pub const BUCKET_SECONDS: i64 = 10;
const BURST_WINDOW_SECONDS: i64 = 900;
const CREATED_BY: &str = "estats-simulator";

/// The eStats answer for `request` at instant `at`. Pure: the same request in the same 10-second
/// bucket gives the same result.
pub fn generate(request: &EstatsRequest, at: DateTime<Utc>) -> EstatsResponse {
    let profile = Profile::for_request(request);
    let bucket = at.timestamp().div_euclid(BUCKET_SECONDS);
    let mut noise = Rng::new(mix(profile.seed, bucket as u64));
    let collect_seconds = 6 + noise.below(3) as i64;
    let completed = at;
    let created = at - ChronoDuration::seconds(collect_seconds);

    let result = match profile.volume {
        None => EstatsData {
            edge_hits: Some(0),
            edge_errors: Some(0),
            origin_hits: Some(0),
            origin_errors: Some(0),
            ..EstatsData::default()
        },
        Some(volume) => {
            let t = (bucket * BUCKET_SECONDS) as f64;
            full_result(&profile, volume, t, &mut noise, completed)
        }
    };
    let result = filter_side(result, request.error_type.as_deref());

    EstatsResponse {
        created_by: Some(CREATED_BY.to_string()),
        created_time: Some(rfc3339(created)),
        completed_time: Some(rfc3339(completed)),
        execution_status: Some("SUCCESS".to_string()),
        request: Some(serde_json::to_value(request).unwrap_or(Value::Null)),
        result: Some(result),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// SplitMix64: tiny, fast, and stable across crate versions (unlike `StdRng`), so generated
/// histories stay reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Multiplicative jitter of ±`spread`.
    fn jitter(&mut self, spread: f64) -> f64 {
        1.0 + spread * (2.0 * self.unit() - 1.0)
    }
}

fn mix(a: u64, b: u64) -> u64 {
    Rng::new(a ^ b.wrapping_mul(0xD6E8_FEB8_6659_FD93)).next_u64()
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Network {
    Standard,
    Enhanced,
}

impl Network {
    fn parse(value: Option<&str>) -> Option<Network> {
        match value? {
            v if v.eq_ignore_ascii_case("STANDARD_TLS") => Some(Network::Standard),
            v if v.eq_ignore_ascii_case("ENHANCED_TLS") => Some(Network::Enhanced),
            _ => None,
        }
    }
}

struct Profile {
    seed: u64,
    /// Mean edge hits per nine-second sample; `None` when the asked network carries no traffic.
    volume: Option<f64>,
    cp_code: u64,
    miss_ratio: f64,
    phases: [f64; 8],
    base: BaseMix,
    ips: Vec<(String, usize)>,
}

/// Mean shares of the non-200 codes, per side.
struct BaseMix {
    edge_304: f64,
    edge_206: f64,
    edge_301: f64,
    edge_302: f64,
    edge_403: f64,
    edge_404: f64,
    edge_500: f64,
    origin_304: f64,
    origin_206: f64,
    origin_301: f64,
    origin_404: f64,
    origin_500: f64,
}

impl Profile {
    fn for_request(request: &EstatsRequest) -> Profile {
        // The "home" network of a subject: CP codes ending in 7 and http URLs are STANDARD_TLS
        // only; everything else is mostly ENHANCED_TLS with a little STANDARD_TLS traffic too.
        let (subject, home, single_network) = match (&request.cp_code, &request.url) {
            (Some(cp), _) => (
                format!("cp:{cp}"),
                if cp % 10 == 7 {
                    Network::Standard
                } else {
                    Network::Enhanced
                },
                cp % 10 == 7,
            ),
            (None, Some(url)) => {
                let http = url.trim().to_ascii_lowercase().starts_with("http:");
                (
                    format!("url:{}", url.trim()),
                    if http {
                        Network::Standard
                    } else {
                        Network::Enhanced
                    },
                    false,
                )
            }
            (None, None) => ("none".to_string(), Network::Enhanced, false),
        };
        let asked = Network::parse(request.delivery.as_deref()).unwrap_or(home);
        let seed = fnv1a(&format!("{subject}/{asked:?}"));
        let mut rng = Rng::new(seed);

        // Log-uniform between a few thousand and a few hundred thousand hits per sample.
        let mut volume = rng.range(8.0, 12.3).exp();
        if asked != home {
            volume *= rng.range(0.05, 0.2);
        }
        let volume = (!(single_network && asked != home)).then_some(volume.max(500.0));
        let cp_code = request
            .cp_code
            .unwrap_or_else(|| 100_000 + fnv1a(&subject) % 1_900_000);

        let mut phases = [0.0; 8];
        for p in &mut phases {
            *p = rng.range(0.0, TAU);
        }
        let base = BaseMix {
            edge_304: rng.range(0.06, 0.18),
            edge_206: rng.range(0.003, 0.03),
            edge_301: rng.range(0.001, 0.008),
            edge_302: rng.range(0.002, 0.02),
            edge_403: rng.range(0.0005, 0.008),
            edge_404: rng.range(0.004, 0.03),
            edge_500: rng.range(0.00005, 0.0008),
            origin_304: rng.range(0.05, 0.25),
            origin_206: rng.range(0.002, 0.02),
            origin_301: rng.range(0.0005, 0.005),
            origin_404: rng.range(0.006, 0.04),
            origin_500: rng.range(0.0001, 0.0015),
        };
        let miss_ratio = rng.range(0.06, 0.45);
        let ips = (0..12)
            .map(|_| {
                (
                    edge_ip(&mut rng),
                    rng.below(LOCATIONS.len() as u64) as usize,
                )
            })
            .collect();
        Profile {
            seed,
            volume,
            cp_code,
            miss_ratio,
            phases,
            base,
            ips,
        }
    }

    /// Origin failure share of `code` at time `t` from scheduled bursts (0 outside bursts).
    fn bursts(&self, t: f64) -> [(u16, f64); 4] {
        let mut out = [(500, 0.0), (502, 0.0), (503, 0.0), (504, 0.0)];
        let window = (t as i64).div_euclid(BURST_WINDOW_SECONDS);
        // A burst may start late in the previous window and run into this one.
        for w in [window - 1, window] {
            let mut rng = Rng::new(mix(self.seed ^ 0xB0B5, w as u64));
            if rng.unit() >= 0.22 {
                continue;
            }
            let start =
                (w * BURST_WINDOW_SECONDS) as f64 + rng.range(0.0, BURST_WINDOW_SECONDS as f64);
            let duration = rng.range(120.0, 420.0);
            let which = rng.below(4) as usize;
            let peak = 0.04 + 0.4 * rng.unit().powi(2);
            if t >= start && t <= start + duration {
                out[which].1 += peak * (PI * (t - start) / duration).sin();
            }
        }
        out
    }
}

/// Akamai-like edge server addresses (public ranges Akamai announces).
fn edge_ip(rng: &mut Rng) -> String {
    const RANGES: [(u8, u8, u8); 7] = [
        (23, 32, 63),
        (104, 64, 127),
        (184, 24, 31),
        (2, 16, 23),
        (96, 6, 7),
        (95, 100, 101),
        (88, 221, 221),
    ];
    let (a, low, high) = RANGES[rng.below(RANGES.len() as u64) as usize];
    let b = low + rng.below(u64::from(high - low) + 1) as u8;
    let c = rng.below(256);
    let d = 1 + rng.below(254);
    format!("{a}.{b}.{c}.{d}")
}

const LOCATIONS: [(&str, &str, &str, u64); 16] = [
    ("TOKYO", "13", "JP", 20940),
    ("OSAKA", "27", "JP", 20940),
    ("FRANKFURT", "HE", "DE", 20940),
    ("LONDON", "EN", "GB", 20940),
    ("PARIS", "IDF", "FR", 20940),
    ("AMSTERDAM", "NH", "NL", 20940),
    ("NEW YORK", "NY", "US", 16625),
    ("ASHBURN", "VA", "US", 16625),
    ("CHICAGO", "IL", "US", 16625),
    ("DALLAS", "TX", "US", 16625),
    ("LOS ANGELES", "CA", "US", 16625),
    ("SAN JOSE", "CA", "US", 16625),
    ("SINGAPORE", "01", "SG", 20940),
    ("SYDNEY", "NSW", "AU", 20940),
    ("SAO PAULO", "SP", "BR", 20940),
    ("MUMBAI", "MH", "IN", 20940),
];

/// `0.5 + 0.5 sin`, a smooth wave in [0, 1] with the given period.
fn wave(t: f64, period: f64, phase: f64) -> f64 {
    0.5 + 0.5 * (TAU * t / period + phase).sin()
}

struct Side {
    total: u64,
    codes: Vec<StatusCodeCount>,
}

impl Side {
    /// Hits per code from shares (non-200 codes; 200 takes the rest), noise applied per code.
    fn from_shares(total: f64, shares: &[(u16, f64)], noise: &mut Rng) -> Side {
        let mut rest = 1.0;
        let mut hits: Vec<(u16, u64)> = Vec::with_capacity(shares.len() + 1);
        for &(code, share) in shares {
            let share = (share * noise.jitter(0.06)).clamp(0.0, rest);
            rest -= share;
            hits.push((code, (total * share).round() as u64));
        }
        hits.push((200, (total * rest).round() as u64));
        hits.retain(|&(_, h)| h > 0);
        hits.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: u64 = hits.iter().map(|h| h.1).sum();
        let codes = hits
            .into_iter()
            .map(|(code, h)| StatusCodeCount {
                http_status: code,
                hits: h,
                percentage: if total == 0 {
                    0.0
                } else {
                    round2(h as f64 * 100.0 / total as f64)
                },
            })
            .collect();
        Side { total, codes }
    }

    fn errors(&self) -> u64 {
        self.codes
            .iter()
            .filter(|c| c.http_status >= 400)
            .map(|c| c.hits)
            .sum()
    }

    fn failure_percentage(&self) -> Option<f64> {
        (self.total > 0).then(|| round2(self.errors() as f64 * 100.0 / self.total as f64))
    }
}

fn full_result(
    p: &Profile,
    volume: f64,
    t: f64,
    noise: &mut Rng,
    completed: DateTime<Utc>,
) -> EstatsData {
    let ph = &p.phases;
    let b = &p.base;
    let traffic = (1.0 + 0.35 * (TAU * t / 86_400.0 + ph[0]).sin())
        * (1.0 + 0.08 * (TAU * t / 1_800.0 + ph[1]).sin() + 0.04 * (TAU * t / 420.0 + ph[2]).sin())
        * noise.jitter(0.03);
    let edge_total = (volume * traffic).max(50.0);
    let miss = (p.miss_ratio * (0.85 + 0.3 * wave(t, 5_400.0, ph[3]))).clamp(0.02, 0.9);
    let origin_total = edge_total * miss;
    let bursts = p.bursts(t);

    let mut edge_shares = vec![
        (304, b.edge_304 * (0.85 + 0.3 * wave(t, 2_400.0, ph[4]))),
        (206, b.edge_206),
        (301, b.edge_301),
        (302, b.edge_302 * (0.8 + 0.4 * wave(t, 3_000.0, ph[5]))),
        // WAF denials come in waves.
        (
            403,
            b.edge_403 * (0.5 + 1.5 * wave(t, 900.0, ph[6]).powi(3)),
        ),
        (404, b.edge_404 * (0.7 + 0.6 * wave(t, 1_300.0, ph[7]))),
    ];
    let mut origin_shares = vec![
        (304, b.origin_304 * (0.85 + 0.3 * wave(t, 2_400.0, ph[4]))),
        (206, b.origin_206),
        (301, b.origin_301),
        (404, b.origin_404 * (0.7 + 0.6 * wave(t, 1_300.0, ph[7]))),
    ];
    for (code, burst) in bursts {
        let baseline_origin = if code == 500 {
            b.origin_500
        } else {
            b.origin_500 * 0.2
        };
        let baseline_edge = if code == 500 {
            b.edge_500
        } else {
            b.edge_500 * 0.2
        };
        origin_shares.push((code, baseline_origin + burst));
        // Only cache misses reach the origin, so the edge sees a diluted burst.
        edge_shares.push((code, baseline_edge + burst * miss));
    }
    let edge = Side::from_shares(edge_total, &edge_shares, noise);
    let origin = Side::from_shares(origin_total, &origin_shares, noise);

    // The grep link's end is the sample's bucket, so the whole result stays per-bucket.
    let ctx = TopIpContext {
        profile: p,
        end: rfc3339(DateTime::from_timestamp(t as i64, 0).unwrap_or(completed)),
    };
    EstatsData {
        edge_errors: Some(edge.errors()),
        edge_hits: Some(edge.total),
        edge_failure_percentage: edge.failure_percentage(),
        origin_errors: Some(origin.errors()),
        origin_hits: Some(origin.total),
        origin_failure_percentage: origin.failure_percentage(),
        top_edge_ips_with_error: Some(ctx.list(&edge, true, false, noise)),
        top_edge_ips_with_error_from_origin: Some(ctx.list(&origin, true, true, noise)),
        top_edge_ips_with_success: Some(ctx.list(&edge, false, false, noise)),
        top_edge_ips_with_success_from_origin: Some(ctx.list(&origin, false, true, noise)),
        edge_status_code_distribution: Some(edge.codes),
        origin_status_code_distribution: Some(origin.codes),
    }
}

struct TopIpContext<'a> {
    profile: &'a Profile,
    end: String,
}

impl TopIpContext<'_> {
    /// Up to five edge servers with the most hits of the side's error (or success) codes.
    fn list(&self, side: &Side, errors: bool, origin: bool, rng: &mut Rng) -> Vec<EdgeIpInfo> {
        let codes: Vec<&StatusCodeCount> = side
            .codes
            .iter()
            .filter(|c| (c.http_status >= 400) == errors)
            .collect();
        if codes.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<EdgeIpInfo> = (0..5)
            .filter_map(|i| {
                // Mostly the biggest codes, sometimes a smaller one.
                let code = codes[if rng.unit() < 0.7 {
                    0
                } else {
                    rng.below(codes.len() as u64) as usize
                }];
                let share = 0.08 * 0.7_f64.powi(i) * rng.range(0.7, 1.3);
                let hits = (code.hits as f64 * share).round() as u64;
                (hits > 0).then(|| self.entry(code.http_status, hits, errors, origin, rng))
            })
            .collect();
        // One row per (server, status), as eStats aggregates them.
        out.sort_by(|a, b| (&a.edge_ip, a.http_status).cmp(&(&b.edge_ip, b.http_status)));
        out.dedup_by(|later, first| {
            let same = later.edge_ip == first.edge_ip && later.http_status == first.http_status;
            if same {
                first.hits = Some(first.hits.unwrap_or(0) + later.hits.unwrap_or(0));
            }
            same
        });
        out.sort_by(|a, b| b.hits.cmp(&a.hits).then_with(|| a.edge_ip.cmp(&b.edge_ip)));
        out
    }

    fn entry(
        &self,
        status: u16,
        hits: u64,
        errors: bool,
        origin: bool,
        rng: &mut Rng,
    ) -> EdgeIpInfo {
        let (ip, location) = &self.profile.ips[rng.below(self.profile.ips.len() as u64) as usize];
        let (city, region, country, asn) = LOCATIONS[*location];
        let error_code = match status {
            403 if rng.unit() < 0.6 => "18:ACCESS_DENIED",
            502 => "1:ERR_CONNECT_FAIL",
            504 => "2:ERR_READ_TIMEOUT",
            _ => "0:None",
        };
        let edge_logs_link = errors.then(|| {
            format!(
                "/edge-diagnostics/v1/grep?edgeIp={ip}&cpCode={}&objectStatus=p&httpStatusCode={status}&end={}&logType={}",
                self.profile.cp_code,
                self.end,
                if origin { "r" } else { "f" }
            )
        });
        EdgeIpInfo {
            edge_ip: ip.clone(),
            http_status: Some(status),
            hits: Some(hits),
            error_code: Some(error_code.to_string()),
            edge_logs_link,
            edge_ip_location: Some(EdgeIpLocation {
                city: Some(city.to_string()),
                region_code: Some(region.to_string()),
                country_code: Some(country.to_string()),
                as_number: Some(asn),
            }),
            object_status: Some(vec![ObjectStatus {
                code: Some("p".to_string()),
                description: Some(
                    "Another hierarchy parent edge server was contacted.".to_string(),
                ),
            }]),
        }
    }
}

/// `errorType` keeps only the members of one side.
fn filter_side(mut r: EstatsData, error_type: Option<&str>) -> EstatsData {
    match error_type {
        Some(t) if t.eq_ignore_ascii_case("EDGE_ERRORS") => {
            r.origin_errors = None;
            r.origin_hits = None;
            r.origin_failure_percentage = None;
            r.top_edge_ips_with_error_from_origin = None;
            r.top_edge_ips_with_success_from_origin = None;
            r.origin_status_code_distribution = None;
        }
        Some(t) if t.eq_ignore_ascii_case("ORIGIN_ERRORS") => {
            r.edge_errors = None;
            r.edge_hits = None;
            r.edge_failure_percentage = None;
            r.top_edge_ips_with_error = None;
            r.top_edge_ips_with_success = None;
            r.edge_status_code_distribution = None;
        }
        _ => {}
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp(code: u64, delivery: Option<&str>) -> EstatsRequest {
        EstatsRequest {
            cp_code: Some(code),
            url: None,
            delivery: delivery.map(str::to_string),
            error_type: None,
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_760_000_000 + secs, 0).unwrap()
    }

    fn check_side(
        hits: Option<u64>,
        errors: Option<u64>,
        failure: Option<f64>,
        dist: &Option<Vec<StatusCodeCount>>,
    ) {
        let dist = dist.as_ref().unwrap();
        let hits = hits.unwrap();
        assert_eq!(dist.iter().map(|c| c.hits).sum::<u64>(), hits);
        let pct: f64 = dist.iter().map(|c| c.percentage).sum();
        assert!((pct - 100.0).abs() <= 0.5, "percentages sum to {pct}");
        for c in dist {
            assert_eq!(c.percentage, round2(c.percentage));
            assert!(c.hits > 0);
        }
        let err: u64 = dist
            .iter()
            .filter(|c| c.http_status >= 400)
            .map(|c| c.hits)
            .sum();
        assert_eq!(errors, Some(err));
        let expected = round2(err as f64 * 100.0 / hits as f64);
        assert_eq!(failure, Some(expected));
    }

    #[test]
    fn plausible_for_many_targets_and_times() {
        let mut codes_seen = std::collections::BTreeSet::new();
        let mut edge_hits = Vec::new();
        for target in 0..40u64 {
            let request = if target % 3 == 0 {
                EstatsRequest {
                    cp_code: None,
                    url: Some(format!("https://www{target}.example.com/")),
                    delivery: None,
                    error_type: None,
                }
            } else {
                cp(1_000_000 + target * 13 + 1, None)
            };
            for step in 0..50 {
                let response = generate(&request, at(step * 600));
                let r = response.result.unwrap();
                check_side(
                    r.edge_hits,
                    r.edge_errors,
                    r.edge_failure_percentage,
                    &r.edge_status_code_distribution,
                );
                check_side(
                    r.origin_hits,
                    r.origin_errors,
                    r.origin_failure_percentage,
                    &r.origin_status_code_distribution,
                );
                edge_hits.push(r.edge_hits.unwrap());
                for c in r.edge_status_code_distribution.unwrap() {
                    codes_seen.insert(c.http_status);
                }
                let top = r.top_edge_ips_with_success.unwrap();
                assert!(!top.is_empty() && top.len() <= 5);
                assert!(top.windows(2).all(|w| w[0].hits >= w[1].hits));
                let mut pairs: Vec<_> = top.iter().map(|i| (&i.edge_ip, i.http_status)).collect();
                pairs.sort();
                pairs.dedup();
                assert_eq!(pairs.len(), top.len());
                for ip in r.top_edge_ips_with_error.unwrap() {
                    assert!(ip.http_status.unwrap() >= 400);
                    assert!(ip.edge_logs_link.unwrap().contains("logType=f"));
                }
                for ip in r.top_edge_ips_with_success_from_origin.unwrap() {
                    assert!(ip.http_status.unwrap() < 400);
                    assert!(ip.edge_logs_link.is_none());
                    assert!(ip.edge_ip_location.unwrap().country_code.is_some());
                }
            }
        }
        for code in [200, 304, 206, 301, 302, 403, 404, 500, 502, 503, 504] {
            assert!(codes_seen.contains(&code), "status {code} never appears");
        }
        let min = *edge_hits.iter().min().unwrap();
        let max = *edge_hits.iter().max().unwrap();
        assert!((500..10_000).contains(&min), "min {min}");
        assert!(max > 100_000 && max < 2_000_000, "max {max}");
    }

    #[test]
    fn deterministic_per_bucket_and_smooth() {
        let request = cp(1209788, Some("ENHANCED_TLS"));
        let a = generate(&request, at(0));
        let b = generate(&request, at(9));
        assert_eq!(a.result, b.result);
        assert_ne!(a.completed_time, b.completed_time);
        let c = generate(&request, at(10));
        assert_ne!(a.result, c.result);
        let hits = |s: i64| generate(&request, at(s)).result.unwrap().edge_hits.unwrap() as f64;
        // Neighbouring samples differ by noise, not by orders of magnitude.
        for s in (0..3600).step_by(10) {
            let ratio = hits(s + 10) / hits(s);
            assert!((0.85..1.18).contains(&ratio), "jump {ratio} at {s}");
        }
        let other = generate(&cp(1209789, Some("ENHANCED_TLS")), at(0));
        assert_ne!(a.result, other.result);
        let times = (a.created_time.unwrap(), a.completed_time.unwrap());
        let created = DateTime::parse_from_rfc3339(&times.0).unwrap();
        let completed = DateTime::parse_from_rfc3339(&times.1).unwrap();
        assert!((6..=8).contains(&(completed - created).num_seconds()));
        assert_eq!(a.execution_status.as_deref(), Some("SUCCESS"));
        assert_eq!(a.created_by.as_deref(), Some(CREATED_BY));
    }

    #[test]
    fn bursts_come_and_go() {
        let request = cp(4242, None);
        let five_xx = |s: i64| {
            generate(&request, at(s))
                .result
                .unwrap()
                .origin_status_code_distribution
                .unwrap()
                .iter()
                .filter(|c| c.http_status >= 500)
                .map(|c| c.percentage)
                .sum::<f64>()
        };
        let series: Vec<f64> = (0..8640).map(|i| five_xx(i * 10)).collect();
        let high = series.iter().filter(|p| **p > 2.0).count();
        assert!(high > 0, "no burst in a day");
        assert!(high < series.len() / 3, "bursting most of the day: {high}");
    }

    #[test]
    fn error_type_keeps_one_side() {
        let mut request = cp(1209788, None);
        request.error_type = Some("EDGE_ERRORS".into());
        let r = generate(&request, at(0)).result.unwrap();
        assert!(r.edge_hits.is_some() && r.top_edge_ips_with_error.is_some());
        assert!(r.origin_hits.is_none() && r.origin_status_code_distribution.is_none());
        assert!(r.top_edge_ips_with_success_from_origin.is_none());

        request.error_type = Some("ORIGIN_ERRORS".into());
        let response = generate(&request, at(0));
        assert_eq!(response.request.unwrap()["errorType"], "ORIGIN_ERRORS");
        let r = response.result.unwrap();
        assert!(r.origin_hits.is_some() && r.top_edge_ips_with_error_from_origin.is_some());
        assert!(r.edge_hits.is_none() && r.edge_status_code_distribution.is_none());
    }

    #[test]
    fn cp_codes_ending_in_7_have_no_enhanced_tls() {
        let empty = generate(&cp(1234567, Some("ENHANCED_TLS")), at(0));
        assert_eq!(empty.execution_status.as_deref(), Some("SUCCESS"));
        let r = empty.result.unwrap();
        assert_eq!(r.edge_hits, Some(0));
        assert!(r.edge_status_code_distribution.is_none());
        assert!(r.top_edge_ips_with_error.is_none());

        let standard = generate(&cp(1234567, Some("STANDARD_TLS")), at(0));
        let unset = generate(&cp(1234567, None), at(0));
        assert_eq!(standard.result, unset.result);
        assert!(standard.result.unwrap().edge_hits.unwrap() > 0);

        // Others use both networks, the non-home one lightly.
        let home = generate(&cp(1234568, Some("ENHANCED_TLS")), at(0));
        let light = generate(&cp(1234568, Some("STANDARD_TLS")), at(0));
        assert!(light.result.unwrap().edge_hits.unwrap() > 0);
        assert_eq!(home.result, generate(&cp(1234568, None), at(0)).result);
    }

    #[test]
    fn serialises_like_the_example() {
        let response = generate(&cp(1209788, None), at(0));
        let json = serde_json::to_value(&response).unwrap();
        for key in [
            "createdBy",
            "createdTime",
            "completedTime",
            "executionStatus",
            "request",
            "result",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
        let result = &json["result"];
        assert!(result["edgeFailurePercentage"].is_f64());
        let ip = &result["topEdgeIpsWithError"][0];
        for key in [
            "edgeIp",
            "httpStatus",
            "hits",
            "errorCode",
            "edgeLogsLink",
            "edgeIpLocation",
            "objectStatus",
        ] {
            assert!(ip.get(key).is_some(), "{key} in {ip}");
        }
        // And it reads back through the client's lenient model.
        let back: EstatsResponse = serde_json::from_value(json).unwrap();
        assert_eq!(back, response);
    }
}
