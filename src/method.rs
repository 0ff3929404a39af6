//! The `method` label: the nine standard methods by name, anything else as `OTHER`, so
//! clients cannot mint label values.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
    Other,
}

impl Method {
    /// Number of variants; `index()` is below it.
    pub const COUNT: usize = 10;

    const ALL: [Method; Method::COUNT] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Connect,
        Method::Options,
        Method::Trace,
        Method::Patch,
        Method::Other,
    ];

    /// Methods are case-sensitive (RFC 9110), so `get` is `OTHER`.
    pub fn from_bytes(raw: &[u8]) -> Method {
        Method::ALL.into_iter().find(|m| m.as_str().as_bytes() == raw).unwrap_or(Method::Other)
    }

    /// Parses a configured method name; `OTHER` is accepted too.
    pub fn from_config(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
            Method::Other => "OTHER",
        }
    }

    /// The method with this [`index`](Self::index) (`OTHER` past the end).
    pub fn from_index(i: usize) -> Method {
        Method::ALL.get(i).copied().unwrap_or(Method::Other)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A set of methods, for per-method templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MethodSet(u16);

impl MethodSet {
    pub fn insert(&mut self, m: Method) {
        self.0 |= 1 << m.index();
    }

    pub fn contains(self, m: Method) -> bool {
        self.0 & (1 << m.index()) != 0
    }

    /// Adds every method of `other`.
    pub fn extend(&mut self, other: MethodSet) {
        self.0 |= other.0;
    }

    /// The methods' names, in [`Method::ALL`] order, as the configuration writes them
    /// (`["GET", "HEAD"]`).
    pub fn names(self) -> Vec<&'static str> {
        Method::ALL.into_iter().filter(|m| self.contains(*m)).map(Method::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_standard_methods_and_buckets_the_rest() {
        assert_eq!(Method::from_bytes(b"GET"), Method::Get);
        assert_eq!(Method::from_bytes(b"PATCH"), Method::Patch);
        assert_eq!(Method::from_bytes(b"get"), Method::Other);
        assert_eq!(Method::from_bytes(b"PROPFIND"), Method::Other);
        assert_eq!(Method::from_bytes(b"\xff\n"), Method::Other);
        assert_eq!(Method::from_bytes(b""), Method::Other);
        for m in Method::ALL {
            assert_eq!(Method::from_config(m.as_str()), Some(m));
            assert_eq!(Method::ALL[m.index()], m);
        }
    }

    #[test]
    fn method_set() {
        let mut set = MethodSet::default();
        set.insert(Method::Post);
        set.insert(Method::Put);
        assert!(set.contains(Method::Post) && set.contains(Method::Put));
        assert!(!set.contains(Method::Get) && !set.contains(Method::Other));
    }
}
