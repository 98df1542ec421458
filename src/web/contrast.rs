//! WCAG 2.2 contrast: relative luminance and contrast ratios of sRGB colours. The generated
//! covers pick their colours with it, and a test holds the stylesheet's colour pairs to AA.

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// What AA asks of normal text.
pub const AA_TEXT: f64 = 4.5;
/// What AA asks of focus indicators, field borders and other parts of controls.
pub const AA_NON_TEXT: f64 = 3.0;

impl Rgb {
    /// `#rrggbb` or `#rgb`.
    pub fn parse_hex(text: &str) -> Option<Rgb> {
        let hex = text.strip_prefix('#')?;
        let digits: Vec<u8> = match hex.len() {
            3 => hex
                .chars()
                .map(|c| u8::from_str_radix(&c.to_string().repeat(2), 16).ok())
                .collect::<Option<_>>()?,
            6 => (0..3)
                .map(|i| u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok())
                .collect::<Option<_>>()?,
            _ => return None,
        };
        Some(Rgb(digits[0], digits[1], digits[2]))
    }

    /// From hue (degrees), saturation and lightness (0 to 1).
    pub fn from_hsl(hue: f64, saturation: f64, lightness: f64) -> Rgb {
        let chroma = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
        let h = hue.rem_euclid(360.0) / 60.0;
        let x = chroma * (1.0 - (h % 2.0 - 1.0).abs());
        let (r, g, b) = match h as u32 {
            0 => (chroma, x, 0.0),
            1 => (x, chroma, 0.0),
            2 => (0.0, chroma, x),
            3 => (0.0, x, chroma),
            4 => (x, 0.0, chroma),
            _ => (chroma, 0.0, x),
        };
        let m = lightness - chroma / 2.0;
        let channel = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
        Rgb(channel(r), channel(g), channel(b))
    }

    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// Relative luminance, as WCAG defines it (0 for black, 1 for white).
    pub fn luminance(self) -> f64 {
        let linear = |channel: u8| {
            let c = f64::from(channel) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * linear(self.0) + 0.7152 * linear(self.1) + 0.0722 * linear(self.2)
    }
}

/// The contrast ratio of two colours, from 1 (none) to 21 (black on white).
pub fn ratio(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (a.luminance(), b.luminance());
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn known_ratios() {
        let black = Rgb(0, 0, 0);
        let white = Rgb::parse_hex("#fff").unwrap();
        assert!((ratio(black, white) - 21.0).abs() < 1e-9);
        assert!((ratio(white, white) - 1.0).abs() < 1e-9);
        // #767676 is the classic lightest grey that passes on white.
        let grey = Rgb::parse_hex("#767676").unwrap();
        assert!(ratio(grey, white) > 4.5 && ratio(grey, white) < 4.6);
        assert_eq!(Rgb::from_hsl(0.0, 1.0, 0.5), Rgb(255, 0, 0));
        assert_eq!(Rgb::from_hsl(240.0, 1.0, 0.5).hex(), "#0000ff");
        assert_eq!(Rgb::parse_hex("#12345"), None);
    }

    /// The custom properties of the stylesheet's `:root` that are plain colours.
    fn stylesheet_colours() -> HashMap<String, Rgb> {
        let css =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/static/css/site.css"))
                .unwrap();
        let root = css
            .split(":root {")
            .nth(1)
            .unwrap()
            .split('}')
            .next()
            .unwrap();
        root.split(';')
            .filter_map(|declaration| {
                let (name, value) = declaration.trim().rsplit('\n').next()?.split_once(':')?;
                let name = name.trim().strip_prefix("--")?;
                Some((name.to_owned(), Rgb::parse_hex(value.trim())?))
            })
            .collect()
    }

    /// Every (foreground, background) pair site.css puts together, by custom property, with
    /// what AA asks of it. A new colour pair in the stylesheet belongs here.
    const PAIRS: &[(&str, &str, f64)] = &[
        // Text.
        ("ink", "paper", AA_TEXT),
        ("ink", "card", AA_TEXT),
        ("muted", "paper", AA_TEXT),
        ("muted", "card", AA_TEXT),
        ("muted", "hero-from", AA_TEXT),
        ("muted", "hero-to", AA_TEXT),
        ("muted", "quiet-bg", AA_TEXT), // "Out of stock", status "cancelled"
        ("accent", "paper", AA_TEXT),   // links
        ("accent", "card", AA_TEXT),
        ("accent", "warn-bg", AA_TEXT),
        ("accent", "ok-bg", AA_TEXT),
        ("accent", "error-bg", AA_TEXT),
        ("accent-ink", "accent", AA_TEXT), // buttons, the cart count, the skip link
        ("ink", "warn-bg", AA_TEXT),       // flash info
        ("ok", "ok-bg", AA_TEXT),
        ("error", "error-bg", AA_TEXT),
        ("error", "card", AA_TEXT), // field errors
        ("scheduled", "scheduled-bg", AA_TEXT),
        ("running", "running-bg", AA_TEXT),
        ("pending", "pending-bg", AA_TEXT),
        ("code", "code-bg", AA_TEXT),
        // Focus rings, field borders, stars.
        ("focus", "paper", AA_NON_TEXT),
        ("focus", "card", AA_NON_TEXT),
        ("field-line", "card", AA_NON_TEXT),
        ("field-line", "paper", AA_NON_TEXT),
        ("error", "card", AA_NON_TEXT), // an invalid field's border
        ("star", "card", AA_NON_TEXT),
        ("star", "paper", AA_NON_TEXT),
    ];

    #[test]
    fn the_stylesheet_colours_meet_wcag_aa() {
        let colours = stylesheet_colours();
        let failures: Vec<String> = PAIRS
            .iter()
            .filter_map(|&(fore, back, needed)| {
                let colour = |name: &str| {
                    *colours
                        .get(name)
                        .unwrap_or_else(|| panic!("site.css has no --{name}"))
                };
                let got = ratio(colour(fore), colour(back));
                (got < needed).then(|| format!("--{fore} on --{back}: {got:.2} < {needed}"))
            })
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
