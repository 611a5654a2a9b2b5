//! `topIps`: the latest sample's top edge IP lists as one `table` frame.

use crate::frame::{Field, Frame, FrameType, Values};
use crate::query::Query;
use crate::sample::{Sample, Side, TopIpList};

fn list_side(list: TopIpList) -> Side {
    match list {
        TopIpList::Error | TopIpList::Success => Side::Edge,
        TopIpList::ErrorFromOrigin | TopIpList::SuccessFromOrigin => Side::Origin,
    }
}

pub fn frame(query: &Query, sample: &Sample, stale: Option<&str>) -> Frame {
    let sides = query.side.sides();
    let rows: Vec<_> = sample
        .top_ips
        .iter()
        .filter(|ip| sides.contains(&list_side(ip.list)))
        .filter(|ip| {
            ip.info
                .http_status
                .is_none_or(|s| query.status_filter.matches(s))
        })
        .collect();
    let text = |f: &dyn Fn(&crate::sample::TopIp) -> Option<String>| {
        Values::OptStr(rows.iter().map(|r| f(r)).collect())
    };
    let location = |r: &crate::sample::TopIp| r.info.edge_ip_location.clone().unwrap_or_default();
    let frame = Frame::new("topIps", FrameType::Table)
        .with_field(Field::new(
            "list",
            Values::Str(rows.iter().map(|r| r.list.as_str().to_string()).collect()),
        ))
        .with_field(Field::new(
            "edgeIp",
            Values::Str(rows.iter().map(|r| r.info.edge_ip.clone()).collect()),
        ))
        .with_field(Field::new(
            "httpStatus",
            Values::OptI64(
                rows.iter()
                    .map(|r| r.info.http_status.map(i64::from))
                    .collect(),
            ),
        ))
        .with_field(Field::new(
            "hits",
            Values::OptI64(rows.iter().map(|r| r.info.hits.map(|h| h as i64)).collect()),
        ))
        .with_field(Field::new(
            "errorCode",
            text(&|r| r.info.error_code.clone()),
        ))
        .with_field(Field::new("city", text(&|r| location(r).city)))
        .with_field(Field::new(
            "countryCode",
            text(&|r| location(r).country_code),
        ))
        .with_field(Field::new(
            "asNumber",
            Values::OptI64(
                rows.iter()
                    .map(|r| location(r).as_number.map(|n| n as i64))
                    .collect(),
            ),
        ))
        .with_field(Field::new(
            "objectStatus",
            text(&|r| {
                r.info.object_status.as_ref().map(|all| {
                    all.iter()
                        .map(|s| match (&s.code, &s.description) {
                            (Some(c), Some(d)) => format!("{c}: {d}"),
                            (Some(c), None) => c.clone(),
                            (None, Some(d)) => d.clone(),
                            (None, None) => String::new(),
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            }),
        ))
        .with_field(Field::new(
            "edgeLogsLink",
            text(&|r| r.info.edge_logs_link.clone()),
        ));
    super::latest_sample_meta(frame, query, sample, stale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::golden;

    fn query(json: &str) -> Query {
        crate::query::for_test(json, "topIps")
    }

    #[test]
    fn all_lists() {
        golden::check(
            "top_ips_both",
            &[frame(
                &query(r#"{"cpCode": 1234567}"#),
                &golden::example_sample(),
                None,
            )],
        );
    }

    #[test]
    fn origin_errors_only() {
        let f = frame(
            &query(r#"{"cpCode": 1234567, "side": "origin", "statusFilter": "4xx"}"#),
            &golden::example_sample(),
            None,
        );
        assert_eq!(
            f.fields[0].values,
            Values::Str(vec!["errorFromOrigin".into(), "errorFromOrigin".into()])
        );
        assert_eq!(f.fields[3].values, Values::OptI64(vec![Some(31), Some(29)]));
    }
}
