//! A book's readers' rating, as the shop shows it: "4.4 from 4,602,479 ratings".

use std::fmt;

use crate::domain::thousands;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rating {
    /// 1 to 5.
    pub average: f32,
    pub count: i32,
}

impl Rating {
    /// A rating worth showing: an average that some readers gave.
    pub fn of(average: Option<f32>, count: i32) -> Option<Rating> {
        average
            .filter(|average| count > 0 && average.is_finite())
            .map(|average| Rating { average, count })
    }

    /// The average to one decimal, as shown: "4.4".
    pub fn average_label(&self) -> String {
        format!("{:.1}", self.average)
    }

    /// The stars to fill, in halves (0 to 10): 4.44 fills 4½.
    pub fn half_stars(&self) -> u8 {
        (self.average * 2.0).round().clamp(0.0, 10.0) as u8
    }
}

impl fmt::Display for Rating {
    /// "4.4 from 4,602,479 ratings", "5.0 from 1 rating".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.count == 1 { "" } else { "s" };
        write!(
            f,
            "{} from {} rating{plural}",
            self.average_label(),
            thousands(self.count.unsigned_abs().into())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rating_reads_as_average_and_count() {
        let rating = Rating::of(Some(4.44), 4_602_479).unwrap();
        assert_eq!(rating.to_string(), "4.4 from 4,602,479 ratings");
        assert_eq!(rating.half_stars(), 9);
        assert_eq!(
            Rating::of(Some(5.0), 1).unwrap().to_string(),
            "5.0 from 1 rating"
        );
        assert_eq!(Rating::of(Some(3.24), 10).unwrap().half_stars(), 6);
    }

    #[test]
    fn no_average_or_no_readers_is_no_rating() {
        assert_eq!(Rating::of(None, 12), None);
        assert_eq!(Rating::of(Some(4.0), 0), None);
    }
}
