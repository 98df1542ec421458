//! The shop's rules, as plain functions over a database connection and parsed value types.
//! Nothing here knows about HTTP.

pub mod accounts;
pub mod cart;
pub mod catalog;
pub mod money;
pub mod orders;
pub mod outbox;
pub mod overview;

/// "  Mary   GrandPré " -> "Mary GrandPré": how every typed or imported name is cleaned.
pub fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// 4602479 -> "4,602,479": how counts and amounts are written for people (US English, like
/// the rest of the shop).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_grouped_by_commas() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(4_602_479), "4,602,479");
    }
}
