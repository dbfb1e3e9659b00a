//! The string `format`s a custom object's values are checked against, as upstream's
//! apiserver/validation/formats.go supports them (the names with dashes removed, go-openapi's
//! normalization: `date-time` is `datetime`) and kube-openapi's strfmt registry checks them.
//! A format upstream does not support is ignored, as upstream strips it from the schema it
//! validates with; so is one supported here only by name (`uri`, `email`, `isbn*`,
//! `creditcard`, `ssn`, `rgbcolor`, `duration`, `quantity`, `password`), which pass.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;

/// Whether `s` is valid in `format`; `None` when the format is not checked.
pub fn check(format: &str, s: &str) -> Option<bool> {
    let normalized = format.replace('-', "");
    Some(match normalized.as_str() {
        "cidr" => is_cidr(s),
        "ipv4" => go_parse_ip(s).is_some() && s.contains('.'),
        "ipv6" => go_parse_ip(s).is_some() && s.contains(':'),
        "mac" => is_mac(s),
        "uuid" => matches(&UUID, s),
        "uuid3" => matches(&UUID3, s),
        "uuid4" => matches(&UUID4, s),
        "uuid5" => matches(&UUID5, s),
        "hostname" => is_hostname(s),
        "bsonobjectid" => s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()),
        "hexcolor" => matches(&HEXCOLOR, s),
        "byte" => matches(&BASE64, s),
        "date" => is_date(s),
        "datetime" => is_date_time(s),
        "k8sshortname" => matches(&SHORT_NAME, s),
        "k8slongname" => s.len() <= 253 && matches(&LONG_NAME, s),
        _ => return None,
    })
}

fn matches(re: &LazyLock<Regex>, s: &str) -> bool {
    re.is_match(s)
}

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
        .expect("uuid")
});
static UUID3: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
        .expect("uuid3")
});
static UUID4: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$")
        .expect("uuid4")
});
static UUID5: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$")
        .expect("uuid5")
});
static HEXCOLOR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$").expect("hexcolor"));
static BASE64: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$")
        .expect("base64")
});
static SHORT_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$").expect("short name"));
static LONG_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
        .expect("long name")
});
// RFC 1034 host names, with the relaxations kube-openapi's pattern allows (leading digits,
// symbols and letters of any script).
static HOSTNAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9\-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z0-9\p{S}\p{L}])(-?[a-zA-Z0-9\p{S}\p{L}]){1,62})$",
    )
    .expect("hostname")
});
// strfmt's date-time: the part after the date's `T` (either case) is a time with an
// optional fraction and a required `Z` or `±hh:mm` offset.
static TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$")
        .expect("date-time")
});

/// Go's `net.ParseIP`: dotted IPv4 (no leading zeros), IPv6 (with an embedded IPv4 tail).
fn go_parse_ip(s: &str) -> Option<IpAddr> {
    if s.contains(':') {
        s.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        s.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

/// Go's `net.ParseCIDR`: an address, a slash, a decimal prefix length within the family's
/// bits (host bits may be set).
fn is_cidr(s: &str) -> bool {
    let Some((addr, len)) = s.split_once('/') else {
        return false;
    };
    let Some(ip) = go_parse_ip(addr) else {
        return false;
    };
    let bits = match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    !len.is_empty()
        && len.len() <= 3
        && len.bytes().all(|b| b.is_ascii_digit())
        && !(len.len() > 1 && len.starts_with('0'))
        && len.parse::<u32>().is_ok_and(|n| n <= bits)
}

/// Go's `net.ParseMAC`: 6, 8 or 20 bytes as `xx:xx:…`, `xx-xx-…` or `xxxx.xxxx.…`.
fn is_mac(s: &str) -> bool {
    let valid_len = |n: usize| [6, 8, 20].contains(&n);
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    for sep in [':', '-'] {
        if s.len() > 2 && s.as_bytes()[2] == sep as u8 {
            let parts: Vec<&str> = s.split(sep).collect();
            return valid_len(parts.len()) && parts.iter().all(|p| hex(p, 2));
        }
    }
    if s.len() > 4 && s.as_bytes()[4] == b'.' {
        let parts: Vec<&str> = s.split('.').collect();
        return valid_len(parts.len() * 2) && parts.iter().all(|p| hex(p, 4));
    }
    false
}

fn is_hostname(s: &str) -> bool {
    HOSTNAME.is_match(s) && s.len() <= 255 && s.split('.').all(|p| p.len() <= 63)
}

fn is_date(s: &str) -> bool {
    // Go's time.Parse("2006-01-02"): four-digit year, two-digit month and day.
    s.len() == 10
        && s.as_bytes()[4] == b'-'
        && s.as_bytes()[7] == b'-'
        && s.parse::<jiff::civil::Date>().is_ok()
}

fn is_date_time(s: &str) -> bool {
    let lower = s.to_lowercase();
    let mut parts = lower.split('t');
    let (Some(date), Some(time)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Some(c) = TIME.captures(time) else {
        return false;
    };
    is_date(date) && &c[1] <= "23" && &c[2] <= "59" && &c[3] <= "59"
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn formats_as_strfmt_checks_them() {
        for (format, good, bad) in [
            ("cidr", "192.168.0.0/16", "192.168.0.0"),
            ("cidr", "fd00::/8", "10.0.0.0/33"),
            ("cidr", "10.1.2.3/8", "10.0.0.0/08"),
            ("ipv4", "10.0.0.1", "fd00::1"),
            ("ipv6", "fd00::1", "10.0.0.1"),
            ("ipv4", "192.168.1.1", "192.168.01.1"),
            ("mac", "00:1a:2B:3c:4d:5e", "00:1a:2b:3c:4d"),
            ("mac", "001a.2b3c.4d5e", "001a2b3c4d5e"),
            ("uuid", "7bef1ad5-b421-4948-a950-51818a121fec", "7bef1ad5"),
            ("hostname", "node-1.example.com", "-node"),
            ("byte", "aGVsbG8=", "hello!"),
            ("hexcolor", "#fFf", "#ffff"),
            ("date", "2026-02-28", "2026-02-30"),
            ("date-time", "2026-08-22T06:33:20Z", "2026-08-22"),
            (
                "date-time",
                "2026-08-22T06:33:20.123456-07:00",
                "2026-08-22T25:00:00Z",
            ),
            ("datetime", "2026-08-22t06:33:20z", "2026-08-22T06:33:20"),
            ("k8s-short-name", "calico-node", "Calico"),
        ] {
            assert_eq!(check(format, good), Some(true), "{format} {good}");
            assert_eq!(check(format, bad), Some(false), "{format} {bad}");
        }
        // Unsupported (int32 is a number format) or unchecked formats pass.
        assert_eq!(check("int32", "x"), None);
        assert_eq!(check("password", "x"), None);
    }
}
