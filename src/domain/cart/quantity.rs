//! The quantities a shopper types, parsed: a change (+/- or "add 3"), a line's new quantity
//! (0 takes the line out), and a quantity of at least 1. A value of these types passed the
//! form's rules, so the cart's functions take them instead of bare numbers.

/// How many copies one change may add or take away (the form's +/- or "add 3").
pub const MAX_CHANGE: i32 = 999;

/// A change of quantity: a non-zero whole number within [`MAX_CHANGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantityChange(i32);

impl QuantityChange {
    pub fn parse(input: &str) -> Result<QuantityChange, String> {
        match input.trim().trim_start_matches('+').parse::<i32>() {
            Ok(0) => Err("Choose how many copies to add.".into()),
            Ok(n) if (-MAX_CHANGE..=MAX_CHANGE).contains(&n) => Ok(QuantityChange(n)),
            _ => Err(format!(
                "The quantity is a whole number from 1 to {MAX_CHANGE}."
            )),
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// What the cart's quantity field asks for: 0 takes the line out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineQuantity {
    Remove,
    Set(Quantity),
}

impl LineQuantity {
    pub fn parse(input: &str) -> Result<LineQuantity, String> {
        match input.trim().parse::<i32>() {
            Ok(0) => Ok(LineQuantity::Remove),
            Ok(_) => Quantity::parse(input).map(LineQuantity::Set),
            Err(_) => Err(format!(
                "Type a number of copies from 0 (takes the line out) to {MAX_CHANGE}."
            )),
        }
    }
}

/// A quantity to set a line to: 1 to [`MAX_CHANGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i32);

impl Quantity {
    pub fn parse(input: &str) -> Result<Quantity, String> {
        match input.trim().parse::<i32>() {
            Ok(n) if n < 1 => {
                Err("A cart line holds at least 1 copy; 0 or Remove takes it out.".into())
            }
            Ok(n) if n <= MAX_CHANGE => Ok(Quantity(n)),
            _ => Err(format!(
                "The quantity is a whole number from 1 to {MAX_CHANGE}."
            )),
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}
