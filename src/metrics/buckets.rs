//! Histogram bucket bounds: validated once (finite, positive, strictly increasing), then a
//! value's bucket is a short scan, and each bound's `le` label is spelled the way Envoy and
//! Prometheus clients spell it (`25`, `2.5`, `1000000`, `+Inf`).

use super::contract::Unit;

/// The most bounds one histogram may have (each is a series per label set).
pub const MAX_BOUNDS: usize = 40;

#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    bounds: Vec<f64>,
    /// `le` label of every bucket, `+Inf` last.
    les: Vec<Box<str>>,
}

impl Bounds {
    /// Checks a list of bounds; the error says what is wrong (the caller adds the field).
    pub fn new(bounds: &[f64]) -> Result<Bounds, String> {
        if bounds.is_empty() || bounds.len() > MAX_BOUNDS {
            return Err(format!("must have 1 to {MAX_BOUNDS} bounds, got {}", bounds.len()));
        }
        if let Some(bad) = bounds.iter().find(|b| !b.is_finite() || **b <= 0.0 || **b > 1e15) {
            return Err(format!("bound {bad} is not a positive number up to 1e15"));
        }
        let descending = bounds.windows(2).find_map(|w| match w {
            [a, b] if a >= b => Some((a, b)),
            _ => None,
        });
        if let Some((a, b)) = descending {
            return Err(format!("bounds must increase strictly, got {a} then {b}"));
        }
        let mut les: Vec<Box<str>> = bounds.iter().map(|b| le_text(*b).into()).collect();
        les.push("+Inf".into());
        Ok(Bounds { bounds: bounds.to_vec(), les })
    }

    /// The contract's default bounds for a unit (valid by construction, checked in tests).
    pub fn of_unit(unit: Unit) -> Bounds {
        let bounds = unit.buckets();
        let mut les: Vec<Box<str>> = bounds.iter().map(|b| le_text(*b).into()).collect();
        les.push("+Inf".into());
        Bounds { bounds: bounds.to_vec(), les }
    }

    /// Buckets, `+Inf` included.
    pub fn len(&self) -> usize {
        self.les.len()
    }

    pub fn is_empty(&self) -> bool {
        self.les.is_empty()
    }

    /// The bucket a value falls in: the first bound it does not exceed, else `+Inf`.
    pub fn index(&self, value: u64) -> usize {
        let v = value as f64;
        self.bounds.iter().position(|b| v <= *b).unwrap_or(self.bounds.len())
    }

    pub fn le(&self, bucket: usize) -> &str {
        self.les.get(bucket).map_or("+Inf", |l| l)
    }

    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }
}

/// `25`, `2.5`, `1000000`: integers without a fraction or exponent.
fn le_text(b: f64) -> String {
    if b.fract() == 0.0 {
        format!("{}", b as u64)
    } else {
        format!("{b}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_first_bound_they_do_not_exceed() {
        let b = Bounds::new(&[1.0, 2.5, 1000.0, 1e6]).unwrap();
        let got: Vec<usize> =
            [0, 1, 2, 3, 1000, 1001, 1_000_000, 1_000_001, u64::MAX].iter().map(|v| b.index(*v)).collect();
        assert_eq!(got, [0, 0, 1, 2, 2, 3, 3, 4, 4]);
        let les: Vec<&str> = (0..b.len()).map(|i| b.le(i)).collect();
        assert_eq!(les, ["1", "2.5", "1000", "1000000", "+Inf"]);
    }

    #[test]
    fn the_default_bounds_are_valid() {
        for unit in [Unit::Milliseconds, Unit::Bytes] {
            assert_eq!(Bounds::new(unit.buckets()), Ok(Bounds::of_unit(unit)));
        }
    }

    #[test]
    fn bad_bounds_say_why() {
        let cases: &[(&[f64], &str)] = &[
            (&[], "must have 1 to 40 bounds, got 0"),
            (&[1.0, 1.0], "bounds must increase strictly, got 1 then 1"),
            (&[5.0, 2.0], "bounds must increase strictly, got 5 then 2"),
            (&[0.0], "bound 0 is not a positive number up to 1e15"),
            (&[-1.0], "bound -1 is not a positive number up to 1e15"),
            (&[f64::INFINITY], "bound inf is not a positive number up to 1e15"),
        ];
        for (bounds, want) in cases {
            assert_eq!(Bounds::new(bounds).unwrap_err(), *want);
        }
        assert!(Bounds::new(&[1.0; 41].iter().enumerate().map(|(i, _)| i as f64 + 1.0).collect::<Vec<_>>()).is_err());
    }
}
