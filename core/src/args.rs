//! Argument parsing helpers: binary arguments in, typed values or
//! [`DbError`]s naming the argument out.

use crate::error::{DbError, DbResult};
use crate::record::Format;
use crate::MAX_NAME_LEN;

/// A decimal unsigned integer: ASCII digits only, no sign, fits in u64.
pub fn parse_u64(arg: &[u8], name: &'static str) -> DbResult<u64> {
    let bad = || DbError::arg(name, "must be a non-negative decimal integer");
    if arg.is_empty() || arg.len() > 20 || !arg.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(bad)
}

/// A decimal integer in `min..=max`.
pub fn parse_in_range(arg: &[u8], name: &'static str, min: u64, max: u64) -> DbResult<u64> {
    let v = parse_u64(arg, name)?;
    if v < min || v > max {
        return Err(DbError::arg(
            name,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(v)
}

/// A record type or id: valid UTF-8, non-empty, at most 1024 bytes.
pub fn parse_name<'a>(arg: &'a [u8], name: &'static str) -> DbResult<&'a str> {
    let arg = parse_token(arg, name)?;
    std::str::from_utf8(arg).map_err(|_| DbError::arg(name, "must be valid UTF-8"))
}

/// A lease name or lease id: non-empty, at most 1024 bytes, any bytes.
pub fn parse_token<'a>(arg: &'a [u8], name: &'static str) -> DbResult<&'a [u8]> {
    if arg.is_empty() {
        return Err(DbError::arg(name, "must not be empty"));
    }
    if arg.len() > MAX_NAME_LEN {
        return Err(DbError::arg(
            name,
            format!("must be at most {MAX_NAME_LEN} bytes"),
        ));
    }
    Ok(arg)
}

/// Case-insensitive keyword match.
pub fn is_word(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Walks `[NAME value ...]` options after the positional arguments.
pub struct Opts<'a> {
    args: &'a [&'a [u8]],
    pos: usize,
}

impl<'a> Opts<'a> {
    /// Options in `args`.
    pub fn new(args: &'a [&'a [u8]]) -> Self {
        Opts { args, pos: 0 }
    }

    /// The next option name, or None at the end.
    pub fn next_name(&mut self) -> Option<&'a [u8]> {
        let a = self.args.get(self.pos)?;
        self.pos += 1;
        Some(a)
    }

    /// The value of the option just read; a missing value is a syntax error.
    pub fn value(&mut self) -> DbResult<&'a [u8]> {
        let a = self.args.get(self.pos).ok_or(DbError::Syntax)?;
        self.pos += 1;
        Ok(a)
    }

    /// The value of a `FORMAT` option.
    pub fn format(&mut self) -> DbResult<Format> {
        let v = self.value()?;
        if is_word(v, "MAP") {
            Ok(Format::Map)
        } else if is_word(v, "PROTO") {
            Ok(Format::Proto)
        } else {
            Err(DbError::arg("FORMAT", "must be MAP or PROTO"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_u64(b"0", "n"), Ok(0));
        assert_eq!(parse_u64(b"18446744073709551615", "n"), Ok(u64::MAX));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b" 1",
            b"1.0",
            b"18446744073709551616",
            b"0x10",
            b"1\0",
        ] {
            let e = parse_u64(bad, "count").unwrap_err();
            assert!(e.to_string().starts_with("ERR count "), "{e}");
        }
        assert!(parse_in_range(b"0", "ttl", 1, 5).is_err());
        assert_eq!(parse_in_range(b"5", "ttl", 1, 5), Ok(5));
    }

    #[test]
    fn names() {
        assert_eq!(parse_name(b"a\0b", "id"), Ok("a\0b"));
        assert!(parse_name(b"", "id").is_err());
        assert!(parse_name(b"\xff", "id")
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
        assert!(parse_name(&[b'a'; 1024], "id").is_ok());
        assert!(parse_name(&[b'a'; 1025], "id").is_err());
    }

    #[test]
    fn options() {
        let args: Vec<&[u8]> = vec![b"format", b"proto", b"FORMAT"];
        let mut o = Opts::new(&args);
        assert!(is_word(o.next_name().unwrap(), "FORMAT"));
        assert_eq!(o.format(), Ok(Format::Proto));
        o.next_name();
        assert_eq!(o.format(), Err(DbError::Syntax));
    }
}
